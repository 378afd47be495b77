"""The key layout: confined, injective, readable for UUIDs, clear errors."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_storage_celery_results.exceptions import ImproperlyConfigured, InvalidResultId
from django_storage_celery_results.keys import MAX_NAME_BYTES, KeyLayout

TASK, GROUP, CHORD = "celery-task-meta-", "celery-taskset-meta-", "chord-unlock-"
layout = KeyLayout((TASK, GROUP, CHORD), setting="test")

HOSTILE = [
    "../x",
    "../../etc/passwd",
    "/abs/path",
    "a/b",
    "a\\b",
    "..\\..\\x",
    ".",
    "..",
    "nul\x00byte",
    "tab\tid",
    "new\nline",
    "\x7f",
    "ÿ",
    "日本語",
    "e\u0301",
    "É",
    "C:\\windows",
    "~",
    " ",
    "...",
    "-",
    "_x",
    "UPPER",
]


@pytest.mark.parametrize("ident", HOSTILE)
def test_hostile_ids_stay_one_safe_component(ident):
    name = layout.name(TASK, ident)
    assert name.startswith(TASK)
    assert "/" not in name and "\\" not in name
    assert name.isascii() and name.isprintable()
    assert name not in (".", "..")


def test_uuid_ids_keep_the_earlier_names():
    ident = str(uuid.uuid4())
    assert layout.name(TASK, ident) == f"{TASK}{ident}"
    assert layout.name(GROUP, uuid.UUID(ident)) == f"{GROUP}{ident}"


def test_uppercase_ids_are_encoded_so_case_insensitive_stores_never_collide():
    assert layout.name(TASK, "abc") != layout.name(TASK, "ABC")
    assert layout.name(TASK, "ABC").lower() == layout.name(TASK, "ABC")


@given(st.text(min_size=1, max_size=120))
@settings(max_examples=500)
def test_every_id_maps_to_one_confined_name(ident):
    try:
        name = layout.name(TASK, ident)
    except InvalidResultId as exc:
        assert "cannot be stored" in str(exc)
        return
    assert name.startswith(TASK)
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert name.isascii() and name.isprintable()
    assert name == name.lower()
    assert len(name.encode()) <= MAX_NAME_BYTES


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
@settings(max_examples=500)
def test_distinct_ids_never_share_a_name(first, second):
    if first != second:
        assert layout.name(TASK, first) != layout.name(TASK, second)


def test_same_id_in_different_kinds_differs():
    assert len({layout.name(kind, "x") for kind in (TASK, GROUP, CHORD)}) == 3


def test_too_long_id_names_the_id():
    ident = "a" * 400
    with pytest.raises(InvalidResultId, match=r"'aaaa.*cannot be stored.*more than 255"):
        layout.name(TASK, ident)


def test_lone_surrogate_and_bad_bytes_are_refused_clearly():
    with pytest.raises(InvalidResultId, match="surrogate"):
        layout.name(TASK, "\udc80")
    with pytest.raises(InvalidResultId, match="not UTF-8"):
        layout.name(TASK, b"\xff\xfe")
    with pytest.raises(InvalidResultId, match="empty"):
        layout.name(TASK, "")
    with pytest.raises(InvalidResultId, match="not a string"):
        layout.name(TASK, 12)


def test_owns_recognises_only_result_names():
    assert layout.owns(layout.name(TASK, "abc"))
    assert layout.owns(layout.name(GROUP, "Abc"))
    assert not layout.owns("media.jpg")
    assert not layout.owns(TASK)


@pytest.mark.parametrize("prefix", ["a/", "../", ".hidden-", "x\x00", "tenant\\"])
def test_unsafe_global_prefix_is_a_configuration_error(prefix):
    with pytest.raises(ImproperlyConfigured, match="global_keyprefix"):
        KeyLayout((prefix + TASK,), setting="result_backend_transport_options['global_keyprefix']")
