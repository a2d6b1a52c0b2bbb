"""The report's optional analyses on the command line: the Grad-CAM and stress groups' values
become the request's options, and a bad value is a usage error naming its option."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from asl_eval.cli import app
from asl_eval.cli_report_options import cam_options, stress_options
from asl_eval.pipeline import CamOptions, StressOptions
from asl_eval.stress import DEFAULT_CORRUPTIONS

runner = CliRunner()


def test_cam_options_carry_every_value() -> None:
    options = cam_options(True, "gradcam++", "layer4", "T, V,T", "massey", 2, 3)
    assert options == CamOptions(
        method="gradcam++",
        layer="layer4",
        classes=("T", "V"),
        set_name="massey",
        k=2,
        n_per_class=3,
    )


def test_no_cam_checks_nothing() -> None:
    assert cam_options(False, "warp-drive", None, None, None, 3, 4) is None


def test_an_unknown_cam_method_names_the_option() -> None:
    with pytest.raises(typer.BadParameter, match="expected one of gradcam, ") as raised:
        cam_options(True, "warp-drive", None, None, None, 3, 4)
    assert raised.value.param_hint == "--cam-method"


def test_stress_options_carry_every_value() -> None:
    options = stress_options(True, "default", "1..2", 5, 7)
    assert options == StressOptions(DEFAULT_CORRUPTIONS, (1, 2), n_per_class=5, seed=7)


def test_no_stress_checks_nothing() -> None:
    assert stress_options(False, "snow-globe", "high", 30, 0) is None


@pytest.mark.parametrize(
    ("corruptions", "severities", "hint", "message"),
    [
        ("snow-globe", "3", "--stress-corruptions", "unknown corruption"),
        ("default", "high", "--stress-severities", "expects '1..5'"),
        ("default", "9", "--stress-severities", "from 0 to"),
    ],
)
def test_a_bad_stress_value_names_its_option(
    corruptions: str, severities: str, hint: str, message: str
) -> None:
    with pytest.raises(typer.BadParameter, match=message) as raised:
        stress_options(True, corruptions, severities, 30, 0)
    assert raised.value.param_hint == hint


@pytest.mark.parametrize(
    ("flags", "option"),
    [
        (["--cam-method", "warp-drive"], "--cam-method"),
        (["--stress", "--stress-corruptions", "snow-globe"], "--stress-corruptions"),
        (["--stress", "--stress-severities", "high"], "--stress-severities"),
    ],
)
def test_a_bad_analysis_option_exits_2_before_the_model_is_opened(
    flags: list[str], option: str
) -> None:
    result = runner.invoke(app, ["report", "no-such-model.pkl", *flags])
    assert result.exit_code == 2
    assert option in result.stderr
