"""What notebook 08 shows: coqui's harmless lines from FastSpeech2 training stay in the log, real warnings do not."""

from nbhelpers.nb import is_harmless

HARMLESS = (  # copied from a smoke run's log (coqui's TensorBoard figures with Bangla labels, its step log)
    "/root/.cache/tts-suite/venvs/main-py311-2aceae069718b3eb/lib/python3.11/site-packages/torch/utils/tensorboard/"
    "_utils.py:24: UserWarning: Glyph 2455 (\\N{BENGALI LETTER GA}) missing from font(s) DejaVu Sans.",
    "  canvas.draw()",
    "     | > duration_error: 7.317205905914307  (7.317205905914307)",
)
REAL = (
    "/code/nbhelpers/baselines/train.py:10: UserWarning: Glyph handling changed",
    "RuntimeError: duration_error is NaN",
    "     | > loss_aligner: nan  (nan)",
)


def test_coqui_figure_and_step_lines_are_harmless_real_warnings_are_not():
    assert all(is_harmless(line) for line in HARMLESS)
    assert not any(is_harmless(line) for line in REAL)
