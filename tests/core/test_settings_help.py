"""Every stage command's --help ends with the stage's settings: allowed values, meaning and value per profile."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from nbhelpers.profiles import PROFILE_DIR, _comments, settings_help, stages


def test_comments_are_read_beside_the_first_assignment_and_from_indented_lines():
    text = '\n'.join([
        '[smoke]',
        'steps = 4            # how many optimiser steps',
        '                     # (0: none)',
        'voice = "a#b"        # a name with a hash',
        'bare = 1',
        '[kaggle-t4]',
        'steps = 10           # a later comment is not the meaning',
    ])
    assert _comments(text) == {"steps": "how many optimiser steps (0: none)", "voice": "a name with a hash",
                               "bare": ""}


def test_every_setting_of_every_stage_is_listed_with_its_allowed_values():
    for stage in stages():
        tables = tomllib.loads((PROFILE_DIR / f"{stage}.toml").read_text(encoding="utf-8"))
        shown = settings_help(stage)
        keys = {k for name, table in tables.items() if name != "limits" for k in table if k != "inherit"}
        for key in keys:
            line = next((x for x in shown.splitlines() if x.startswith(f"  {key}: ")), None)
            assert line is not None, f"{stage}: {key} missing from the settings help"
            assert "not limited" not in line, f"{stage}: {key} has no [limits] entry"


def test_a_stage_command_help_ends_with_its_settings():
    out = subprocess.run([sys.executable, "-m", "nbhelpers.vits", "train", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    tail = out.stdout.split("settings (--set KEY=VALUE", 1)[1]
    assert "  batch_size: a whole number in [1, inf]" in tail and "smoke = 4;" in tail
    assert "mixed_precision: true or false. opt-in only" in tail
