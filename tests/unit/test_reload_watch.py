"""What a look at the files notices: a new, changed, replaced or removed mapping file, the config file,
and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

from engine.reload.status import ReloadStatus
from engine.reload.watch import FileWatch


def test_a_look_sees_each_kind_of_change(tmp_path: Path) -> None:
    (tmp_path / "providers").mkdir()
    (tmp_path / "dialects").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n")
    acme = tmp_path / "providers" / "acme.yaml"
    acme.write_text("name: acme\n")
    watch = FileWatch([tmp_path], config)
    first = watch.look()
    assert watch.look() == first  # nothing changed: the same look
    (tmp_path / "providers" / "notes.txt").write_text("not a mapping")
    assert watch.look() == first
    acme.write_text("name: acme2\n")  # edited in place (another size)
    edited = watch.look()
    assert edited.mappings != first.mappings and edited.source == first.source
    stat = acme.stat()
    os.utime(acme, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size, touched
    touched = watch.look()
    assert touched.mappings != edited.mappings
    (tmp_path / "dialects" / "d.yaml").write_text("{}")  # a new file
    added = watch.look()
    assert added.mappings != touched.mappings
    (tmp_path / "dialects" / "d.yaml").unlink()  # removed
    assert watch.look().mappings == touched.mappings
    config.write_text("model_list: [] # changed\n")
    assert watch.look().source != first.source and watch.look().mappings == touched.mappings


def test_without_a_config_the_default_sets_are_watched(tmp_path: Path) -> None:
    watch = FileWatch([tmp_path], None)
    before = watch.look()
    (tmp_path / "models").mkdir()  # a folder that was not there is watched once it is
    (tmp_path / "models" / "defaults.yaml").write_text("model_list: []\n")
    after = watch.look()
    assert after.source != before.source and after.mappings == before.mappings


def test_the_status_reports_a_refusal_until_a_success() -> None:
    now = [100.0]
    status = ReloadStatus(lambda: now[0])
    status.mappings.failed("own/providers/x.yaml:3: unknown key")
    assert status.detail()["mappings"] == {
        "version": 1,
        "loaded_at": 100.0,
        "error": "own/providers/x.yaml:3: unknown key",
        "failures": 1,
    }
    now[0] = 105.0
    status.mappings.succeeded(now[0])
    assert status.detail()["mappings"] == {"version": 2, "loaded_at": 105.0, "failures": 1}
    families = {family.name: family.samples[0].value for family in status.families()}
    assert families["turnout_mappings_version"] == 2
    assert families["turnout_mappings_reload_failures"] == 1
    assert families["turnout_config_reload_success_timestamp_seconds"] == 100.0
