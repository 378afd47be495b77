"""Every check id a package can emit is in its catalogue, and no id has two meanings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import django_storage_celery_results
import django_storage_celery_results_azure
import django_storage_celery_results_filesystem
import django_storage_celery_results_gcs
import django_storage_celery_results_s3
from django_storage_celery_results.catalogue import OBJECT_STORE_CHECKS, Catalogue, CheckId
from django_storage_celery_results.checks import CHECKS as CORE_CHECKS

ID = re.compile(r"^[EWI]\d{3}$")
#: Calls whose first argument is a check id: Catalogue.message, Probe.add, Finding.
EMITTERS = {"message", "add", "Finding"}
PROVIDERS = {
    django_storage_celery_results_filesystem: django_storage_celery_results_filesystem.CHECKS,
    django_storage_celery_results_s3: django_storage_celery_results_s3.CHECKS,
    django_storage_celery_results_gcs: django_storage_celery_results_gcs.CHECKS,
    django_storage_celery_results_azure: django_storage_celery_results_azure.CHECKS,
}
OBJECT_STORES = [
    django_storage_celery_results_s3,
    django_storage_celery_results_gcs,
    django_storage_celery_results_azure,
]


def source_files(package) -> list[Path]:
    return sorted(Path(package.__file__).parent.glob("*.py"))


def emitted(path: Path) -> set[str]:
    """The check ids a module passes to an emitter."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in EMITTERS and isinstance(first, ast.Constant) and ID.match(str(first.value)):
            found.add(first.value)
    return found


def made_by_hand(path: Path) -> list[str]:
    """Check messages built without a catalogue (checks.Error(...), CheckMessage(...))."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"checks\.(?:Error|Warning|Info|Critical|Debug|CheckMessage)\(", text)


def test_every_id_core_emits_is_in_its_catalogue():
    core = source_files(django_storage_celery_results)
    probe = [path for path in core if path.name == "probe.py"]
    own = set().union(*(emitted(path) for path in core if path not in probe))
    assert own and own <= set(CORE_CHECKS.entries)
    template = emitted(probe[0])
    assert template and template <= set(OBJECT_STORE_CHECKS.entries)


@pytest.mark.parametrize("package", list(PROVIDERS), ids=lambda package: package.__name__)
def test_every_id_a_provider_emits_is_in_its_catalogue(package):
    catalogue = PROVIDERS[package]
    assert catalogue.package == package.__name__
    ids = set().union(*(emitted(path) for path in source_files(package)))
    assert ids <= set(catalogue.entries), ids - set(catalogue.entries)


@pytest.mark.parametrize("package", OBJECT_STORES, ids=lambda package: package.__name__)
def test_object_stores_catalogue_what_the_probe_template_reports(package):
    # diagnose() and the round trip can report these on any store
    assert {"E010", "E011", "E012", "E013", "E014"} <= set(PROVIDERS[package].entries)


@pytest.mark.parametrize(
    "package", [django_storage_celery_results, *PROVIDERS], ids=lambda package: package.__name__
)
def test_no_check_message_is_made_by_hand(package):
    for path in source_files(package):
        if path.name != "catalogue.py":
            assert made_by_hand(path) == [], path


def test_no_id_has_two_meanings_across_providers():
    meanings: dict[str, set[str]] = {}
    for package in OBJECT_STORES:
        for entry in PROVIDERS[package]:
            meanings.setdefault(entry.id, set()).add(entry.meaning)
    assert {check_id: found for check_id, found in meanings.items() if len(found) > 1} == {}
    shared = OBJECT_STORE_CHECKS.entries
    for catalogue in PROVIDERS.values():
        for entry in catalogue:
            if catalogue.package != "django_storage_celery_results_filesystem" and entry.id in shared:
                assert entry is shared[entry.id], f"{catalogue.full_id(entry)} redefines a shared id"


def test_a_catalogue_refuses_unknown_and_duplicate_ids():
    catalogue = Catalogue("pkg", CheckId("W001", "something"))
    assert catalogue.message("W001", "text", "hint").id == "pkg.W001"
    assert catalogue.message("W001", "text").is_serious() is False
    with pytest.raises(KeyError):
        catalogue.message("E001", "text")
    with pytest.raises(ValueError, match="defined twice"):
        Catalogue("pkg", CheckId("W001", "a"), CheckId("W001", "b"))
    with pytest.raises(ValueError, match="three digits"):
        CheckId("E1", "short")


def test_the_public_shape_for_documentation_tables():
    for catalogue in (CORE_CHECKS, *PROVIDERS.values()):
        rows = [(catalogue.full_id(entry), entry.level, entry.meaning) for entry in catalogue]
        assert rows and all(level in ("error", "warning", "info") for _id, level, _meaning in rows)


DOCS_TABLE = re.compile(r"<!-- checks:begin (\S+) -->\n(.*?)<!-- checks:end -->", re.S)
ROW = re.compile(r"^\| `(?P<id>[\w.]+)` \| (?P<level>\w+) \|", re.M)


def test_the_checks_page_lists_every_catalogued_id_with_its_level():
    page = (Path(__file__).resolve().parents[1] / "docs" / "checks.md").read_text()
    tables = {package: table for package, table in DOCS_TABLE.findall(page)}
    catalogues = [CORE_CHECKS, *PROVIDERS.values()]
    assert sorted(tables) == sorted(catalogue.package for catalogue in catalogues)
    for catalogue in catalogues:
        documented = {row["id"]: row["level"] for row in ROW.finditer(tables[catalogue.package])}
        assert documented == {catalogue.full_id(entry): entry.level for entry in catalogue}, catalogue.package
