"""Plugin discovery through real `vaekit.plugins` entry points: minimal *.dist-info folders on a tmp sys.path entry.

Each test writes distributions (METADATA + entry_points.txt) and their modules into its own folder, puts it
first on sys.path, and starts from an empty cache of loaded plugins, so importlib.metadata sees exactly what
an installed package would show.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import vaekit
import vaekit.plugin
from vaekit import Plugin, PluginError, get_plugin, list_plugins
from vaekit.plugin import plugin_status

GOOD_MODULE = """\
import vaekit

class GoodPlugin(vaekit.Plugin):
    name = "enginetest_good"
    description = "imports fine"

plugin = GoodPlugin()
"""

EXPLODING_MODULE = """\
from pathlib import Path
Path({marker!r}).write_text("imported")  # proof that the module body ran
raise RuntimeError("enginetest_boom cannot find its weights")
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setattr(vaekit.plugin, "_loaded", {})
    monkeypatch.setattr(vaekit.plugin, "_registered", {})
    yield folder
    for name in [name for name in sys.modules if name.startswith("enginetest_")]:
        del sys.modules[name]


def install(site: Path, distribution: str, version: str, entry_points: dict[str, str],
            modules: dict[str, str] | None = None) -> None:
    """Write what pip would: <name>-<version>.dist-info with METADATA and entry_points.txt, plus the modules."""
    dist_info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[vaekit.plugins]\n{lines}")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def activate(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the folder first on sys.path once everything is written (import and metadata caches cleared)."""
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def entry(name: str):
    matches = [e for e in list_plugins() if e.name == name]
    assert len(matches) == 1, matches
    return matches[0]


def test_an_installed_plugin_is_listed_with_its_distribution_and_version_and_loads(site, monkeypatch):
    install(site, "enginetest-good", "1.2.3", {"enginetest_good": "enginetest_good_module:plugin"},
            {"enginetest_good_module": GOOD_MODULE})
    activate(site, monkeypatch)
    found = entry("enginetest_good")
    assert (found.distribution, found.version, found.value) == ("enginetest-good", "1.2.3",
                                                                "enginetest_good_module:plugin")
    plugin = get_plugin("enginetest_good")
    assert isinstance(plugin, Plugin) and plugin.description == "imports fine"
    assert get_plugin("enginetest_good") is plugin  # imported once
    assert plugin_status(found) == "ok"


def test_listing_reads_metadata_without_importing_plugin_code(site, monkeypatch, tmp_path):
    marker = tmp_path / "imported.txt"
    install(site, "enginetest-boom", "0.1", {"enginetest_boom": "enginetest_boom_module:plugin"},
            {"enginetest_boom_module": EXPLODING_MODULE.format(marker=str(marker))})
    activate(site, monkeypatch)
    assert entry("enginetest_boom").distribution == "enginetest-boom"
    assert not marker.exists() and "enginetest_boom_module" not in sys.modules
    with pytest.raises(PluginError):
        get_plugin("enginetest_boom")
    assert marker.exists()  # using it is what imports it


def test_a_broken_plugin_is_reported_with_its_error_and_the_others_still_load(site, monkeypatch, tmp_path):
    install(site, "enginetest-boom", "0.1", {"enginetest_boom": "enginetest_boom_module:plugin"},
            {"enginetest_boom_module": EXPLODING_MODULE.format(marker=str(tmp_path / "m"))})
    install(site, "enginetest-typo", "0.1", {"enginetest_typo": "enginetest_no_such_module:plugin"})
    install(site, "enginetest-good", "1.0", {"enginetest_good": "enginetest_good_module:plugin"},
            {"enginetest_good_module": GOOD_MODULE})
    activate(site, monkeypatch)

    with pytest.raises(PluginError) as error:
        get_plugin("enginetest_boom")
    message = str(error.value)
    assert "'enginetest_boom'" in message and "enginetest-boom" in message  # plugin and distribution
    assert "RuntimeError: enginetest_boom cannot find its weights" in message
    assert isinstance(error.value.__cause__, RuntimeError)

    status = plugin_status(entry("enginetest_typo"))
    assert status.startswith("error:") and "enginetest-typo" in status and "ModuleNotFoundError" in status
    assert "enginetest_boom cannot find its weights" in plugin_status(entry("enginetest_boom"))

    assert plugin_status(entry("enginetest_good")) == "ok"
    assert isinstance(get_plugin("enginetest_good"), Plugin)
    assert {"enginetest_boom", "enginetest_typo", "enginetest_good"} <= {e.name for e in list_plugins()}


def test_two_distributions_registering_one_name_is_a_clear_error(site, monkeypatch):
    install(site, "enginetest-twin-a", "1.0", {"enginetest_twin": "enginetest_twin_a:plugin"},
            {"enginetest_twin_a": GOOD_MODULE})
    install(site, "enginetest-twin-b", "2.0", {"enginetest_twin": "enginetest_twin_b:plugin"},
            {"enginetest_twin_b": GOOD_MODULE})
    install(site, "enginetest-good", "1.0", {"enginetest_good": "enginetest_good_module:plugin"},
            {"enginetest_good_module": GOOD_MODULE})
    activate(site, monkeypatch)
    twins = [e for e in list_plugins() if e.name == "enginetest_twin"]
    assert sorted(e.distribution for e in twins) == ["enginetest-twin-a", "enginetest-twin-b"]
    with pytest.raises(PluginError) as error:
        get_plugin("enginetest_twin")
    message = str(error.value)
    assert "registered twice" in message and "enginetest-twin-a" in message and "enginetest-twin-b" in message
    assert "enginetest_twin_a" not in sys.modules and "enginetest_twin_b" not in sys.modules  # neither imported
    assert plugin_status(twins[0]).startswith("error:")
    assert isinstance(get_plugin("enginetest_good"), Plugin)  # the others are unaffected


def test_an_entry_point_that_is_not_a_plugin_is_rejected_and_a_class_is_instantiated(site, monkeypatch):
    install(site, "enginetest-odd", "1.0", {"enginetest_notplugin": "enginetest_odd_module:not_a_plugin",
                                            "enginetest_class": "enginetest_odd_module:GoodPlugin"},
            {"enginetest_odd_module": GOOD_MODULE + "\nnot_a_plugin = {'name': 'dict'}\n"})
    activate(site, monkeypatch)
    with pytest.raises(PluginError, match=r"'enginetest_notplugin' \(enginetest_odd_module:not_a_plugin\) is a dict, "
                                          r"not a vaekit.Plugin"):
        get_plugin("enginetest_notplugin")
    assert isinstance(get_plugin("enginetest_class"), Plugin)


def test_an_unknown_name_lists_what_is_installed(site, monkeypatch):
    install(site, "enginetest-good", "1.0", {"enginetest_good": "enginetest_good_module:plugin"},
            {"enginetest_good_module": GOOD_MODULE})
    activate(site, monkeypatch)
    with pytest.raises(PluginError, match=r"unknown plugin 'enginetest_goood'; installed plugins: .*enginetest_good"):
        get_plugin("enginetest_goood")


def test_a_plugin_registered_in_process_is_listed_and_returned(site):
    class InProcess(Plugin):
        name = "enginetest_inprocess"

    plugin = InProcess()
    vaekit.register_plugin(plugin)
    assert get_plugin("enginetest_inprocess") is plugin
    assert entry("enginetest_inprocess").distribution == "(registered in process)"
    with pytest.raises(PluginError, match="needs a name"):
        vaekit.register_plugin(Plugin())


def test_the_name_a_loaded_plugin_reports_finds_it_again(site, monkeypatch):
    # Recipes and config.json record plugin.name; vaekit.load looks that name up again. A package whose
    # Plugin.name differs from its entry-point name must be renamed to the entry point or refused clearly.
    install(site, "enginetest-alias", "1.0", {"enginetest_alias": "enginetest_alias_module:plugin"},
            {"enginetest_alias_module": GOOD_MODULE.replace('name = "enginetest_good"', 'name = "enginetest_other"')})
    activate(site, monkeypatch)
    try:
        plugin = get_plugin("enginetest_alias")
    except PluginError as error:
        assert "enginetest_alias" in str(error) and "enginetest_other" in str(error)
        return
    assert get_plugin(plugin.name) is plugin


def test_a_plugin_whose_import_calls_sys_exit_is_listed_as_broken_and_plugins_exits_normally(site, monkeypatch,
                                                                                               capsys):
    from vaekit.cli import main

    install(site, "enginetest-quitter", "0.2", {"enginetest_quitter": "enginetest_quitter_module:plugin"},
            {"enginetest_quitter_module": "import sys\nsys.exit(3)\n"})
    install(site, "enginetest-good", "1.0", {"enginetest_good": "enginetest_good_module:plugin"},
            {"enginetest_good_module": GOOD_MODULE})
    activate(site, monkeypatch)

    with pytest.raises(PluginError, match="'enginetest_quitter' from enginetest-quitter failed to import: SystemExit"):
        get_plugin("enginetest_quitter")
    assert main(["plugins"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "error:" in rows["enginetest_quitter"] and "SystemExit: 3" in rows["enginetest_quitter"]
    assert rows["enginetest_good"].split()[-1] == "ok"
