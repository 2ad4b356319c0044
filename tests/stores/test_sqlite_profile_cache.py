"""The SQLite store keeps parsed profiles beside their text: what it serves is always the
stored text's profile, whoever wrote it."""

from __future__ import annotations

from pathlib import Path

from features.profile import Seen, UserProfile
from riskengine.adapters.stores import SqliteStore

from .test_contract import T0, bump, load, record


def test_a_profile_written_by_another_process_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    mine, theirs = SqliteStore(path), SqliteStore(path)
    record(mine, "e1", update=bump)
    assert load(mine).profile == UserProfile(logins=1)  # now kept by ``mine``

    record(theirs, "e2", update=bump)

    assert load(mine).profile == UserProfile(logins=2)
    mine.close()
    theirs.close()


def test_what_an_update_returned_and_kept_cannot_change_the_next_load(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    returned: list[UserProfile] = []

    def keeps_its_result(profile: UserProfile) -> UserProfile:
        out = bump(profile)
        returned.append(out)
        return out

    record(store, "e1", update=keeps_its_result)
    returned[0].logins = 99
    returned[0].devices["x"] = Seen(1, T0, T0)

    assert load(store).profile == UserProfile(logins=1)
    store.close()


def test_mutating_a_loaded_profile_does_not_reach_the_next_record(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    record(store, "e1", update=bump)
    loaded = load(store).profile
    assert loaded is not None
    loaded.logins = 99

    record(store, "e2", update=bump)

    assert store.get_profile("t1", "u1") == UserProfile(logins=2)
    assert load(store).profile == UserProfile(logins=2)
    store.close()


def test_erasing_a_user_forgets_the_kept_profile(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    record(store, "e1", update=bump)
    load(store)

    store.erase_user("t1", "u1")

    assert ("t1", "u1") not in store._parsed
    assert load(store).profile is None
    store.close()
