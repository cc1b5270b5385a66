"""The Dagster code location: it validates, and its graph is one lineage from source to mart."""

import importlib
import itertools
import tomllib

import dagster as dg
import pytest

from regulars.settings import Settings

pytestmark = pytest.mark.usefixtures("fresh_dbt_manifest")


def test_dagster_validates_the_code_location(regulars_env: Settings):
    """What `dagster definitions validate` does, in this process: load the module pyproject.toml
    names for the code location and check its Definitions would load."""
    config = tomllib.loads((regulars_env.project_dir / "pyproject.toml").read_text())
    module = importlib.import_module(config["tool"]["dagster"]["module_name"])
    module = importlib.reload(module)  # built now, for this test's environment
    (defs,) = [value for value in vars(module).values() if isinstance(value, dg.Definitions)]
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_asset_graph().get_all_asset_keys()


def test_asset_graph_runs_from_the_ordering_db_to_the_marts(tiny_world: Settings):
    from ingestion.registry import configured_sources
    from orchestration.assembly import build_definitions
    from regulars.cli.demo import demo_apis

    # A world with every channel (the API ones served by the demo fakes): each dbt source then
    # has the gate asset that loads it.
    regulars_env = tiny_world
    with demo_apis(regulars_env):
        graph = build_definitions(regulars_env).resolve_asset_graph()
        systems = {dg.AssetKey(["sources", s.name]) for s in configured_sources(regulars_env)}
    key = dg.AssetKey
    lineage = [
        key(["sources", "ordering"]),
        key(["landing_ordering", "orders"]),
        key(["raw_ordering", "orders"]),
        key(["staging", "stg_ordering__orders"]),
        key(["intermediate", "int_orders_live"]),
        key(["marts", "fct_orders"]),
    ]
    for upstream, downstream in itertools.pairwise(lineage):
        assert upstream in graph.get(downstream).parent_keys, f"{upstream} -> {downstream}"
    assert key(["marts", "dim_customers"]) in graph.get_all_asset_keys()
    assert (
        key(["raw_order_history", "orders"])
        in graph.get(key(["staging", "stg_order_history__orders"])).parent_keys
    )
    # No orphans: every dbt source resolved to a gate asset, not a stub of its own.
    roots = {k for k in graph.get_all_asset_keys() if not graph.get(k).parent_keys}
    assert len(systems) == 7
    assert roots == systems


def test_the_graph_is_the_same_whichever_sources_a_chain_has(
    tiny_world: Settings, monkeypatch: pytest.MonkeyPatch
):
    """A job, a schedule or a saved selection must not change with the environment: a source
    without its settings stays in the graph (and is skipped at run time)."""
    import shutil

    from ingestion.registry import SOURCES, configured_sources
    from orchestration.assembly import build_definitions
    from regulars.cli.demo import demo_apis

    with demo_apis(tiny_world):
        assert len(configured_sources(tiny_world)) == len(SOURCES)
        everything = build_definitions(tiny_world).resolve_asset_graph()
    shutil.rmtree(tiny_world.data_dir)
    for source in ("GA4", "META_ADS"):
        for name in ("ACCESS_TOKEN", "PROPERTY_ID", "AD_ACCOUNT_ID", "START_DATE"):
            monkeypatch.delenv(f"SOURCES__{source}__{name}", raising=False)
    assert configured_sources(tiny_world) == []
    nothing = build_definitions(tiny_world).resolve_asset_graph()

    assert nothing.get_all_asset_keys() == everything.get_all_asset_keys()
    assert nothing.asset_check_keys == everything.asset_check_keys


def test_each_dashboard_is_an_asset_downstream_of_the_serving_copy_and_its_marts(
    regulars_env: Settings,
):
    """The lineage ends at the dashboards: one external asset per dbt dashboard exposure, with
    the serving copy and every mart the exposure lists upstream, and its URL."""
    import json

    import yaml

    from orchestration.assembly import build_definitions
    from orchestration.dbt import dbt_project
    from orchestration.serving import SERVING_KEY

    graph = build_definitions(regulars_env).resolve_asset_graph()
    exposures = yaml.safe_load(
        (regulars_env.dbt_project_dir / "models/marts/_marts__exposures.yml").read_text()
    )["exposures"]
    dashboards = {
        key: graph.get(key) for key in graph.get_all_asset_keys() if key.path[0] == "dashboards"
    }
    assert sorted(key.path[1] for key in dashboards) == sorted(e["name"] for e in exposures)
    manifest = json.loads(dbt_project(regulars_env).manifest_path.read_text())
    for exposure in exposures:
        node = dashboards[dg.AssetKey(["dashboards", exposure["name"]])]
        marts = {ref.split("'")[1] for ref in exposure["depends_on"]}
        assert node.parent_keys == {SERVING_KEY} | {dg.AssetKey(["marts", m]) for m in marts}
        assert not node.is_executable  # Superset reads the copy; no run builds a dashboard
        assert node.metadata["url"].value == exposure["url"]
        assert (
            manifest["exposures"][f"exposure.regulars.{exposure['name']}"]["url"] == exposure["url"]
        )


def test_a_reader_never_sees_half_a_manifest_while_dbt_parses(regulars_env: Settings):
    """The code location reads dbt's manifest whenever it loads (the UI's code server, a second
    command); `prepare` renames a finished manifest into place rather than letting dbt write it
    where readers are."""
    import json
    import threading

    from orchestration import dbt
    from regulars.cli.demo import SIMULATED_CHAIN
    from regulars.settings import environment, load_settings

    # With the vars every other test's manifest has (tests/conftest.py, fresh_dbt_manifest).
    with environment({"CHAIN__TIMEZONE": SIMULATED_CHAIN["timezone"]}):
        settings = load_settings()
        project = dbt.dbt_project(settings)
        stop, reads, broken = threading.Event(), [], []

        def read_continuously() -> None:
            while not stop.is_set():
                try:
                    reads.append(len(json.loads(project.manifest_path.read_text())["nodes"]))
                except json.JSONDecodeError as error:
                    broken.append(str(error))

        reader = threading.Thread(target=read_continuously)
        reader.start()
        try:
            dbt.prepare(project, settings)
        finally:
            stop.set()
            reader.join()
        # What the parse read is recorded beside its manifest: the next run need not parse again.
        assert not dbt.prepare_if_changed(project, settings)
    assert broken == []
    assert len(reads) > 20 and min(reads) > 500


def test_dbt_parses_again_exactly_when_something_a_parse_reads_changed(
    regulars_env: Settings, tmp_path, monkeypatch
):
    import shutil

    from dagster_dbt import DbtProject

    from orchestration import dbt
    from regulars.settings import load_settings

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(
        regulars_env.dbt_project_dir, project_dir, ignore=shutil.ignore_patterns("target", "logs")
    )
    project = DbtProject(project_dir=project_dir)
    target = project_dir / "target"
    parses: list[str] = []

    def parse(project: DbtProject, settings: Settings) -> None:
        # What `prepare` leaves, without dbt's seconds: its artifacts, then what it read.
        target.mkdir(exist_ok=True)
        for name in dbt.PARSE_ARTIFACTS:
            (target / name).write_text(f"parse {len(parses)}")
        (target / dbt.PARSE_INPUTS_FILE).write_text(dbt.parse_inputs(project, settings))
        parses.append(str(len(parses)))

    monkeypatch.setattr(dbt, "prepare", parse)

    def parsed_after(change=lambda: None, settings: Settings = regulars_env) -> bool:
        change()
        return dbt.prepare_if_changed(project, settings)

    assert parsed_after()  # no manifest yet
    assert not parsed_after()
    # dagster-dbt's invocation folders under target/ are not something a parse reads.
    assert not parsed_after(lambda: (target / "regulars_dbt-abc-def").mkdir())
    model = project_dir / "models" / "marts" / "orders" / "fct_orders.sql"
    assert parsed_after(lambda: model.write_text(model.read_text() + "\n-- edited\n"))
    assert parsed_after(lambda: monkeypatch.setenv("REGULARS_DUCKDB_MEMORY_LIMIT", "1GB"))
    # A variable no file of the project names does not count, until one does.
    assert not parsed_after(lambda: monkeypatch.setenv("STORE_REGION", "north"))
    reader = project_dir / "models" / "marts" / "orders" / "stores_in_region.sql"
    assert parsed_after(lambda: reader.write_text("select '{{ env_var(\"STORE_REGION\") }}'\n"))
    assert parsed_after(lambda: monkeypatch.setenv("STORE_REGION", "south"))
    # The chain's vars, from its settings.
    monkeypatch.setenv("CHAIN__TIMEZONE", "Europe/Rome")
    assert parsed_after(settings=load_settings())
    assert not parsed_after(settings=load_settings())
    # A `dbt parse` by hand replaced the manifest, with whichever vars it was given.
    assert parsed_after(lambda: (target / "manifest.json").write_text("by hand"))
    assert not parsed_after(settings=load_settings())
    assert len(parses) == 7


def test_a_model_dbt_cannot_parse_is_named_and_no_manifest_is_replaced(
    regulars_env: Settings, tmp_path
):
    import shutil
    from pathlib import Path

    from dagster_dbt import DbtProject

    from orchestration import dbt

    project_dir = tmp_path / "dbt_project"
    shutil.copytree(
        regulars_env.dbt_project_dir, project_dir, ignore=shutil.ignore_patterns("target", "logs")
    )
    broken = project_dir / "models" / "marts" / "orders" / "orders_by_moon_phase.sql"
    broken.write_text("select * from {{ ref('moon_phases') }}\n")
    target = project_dir / "target"
    target.mkdir()
    (target / "manifest.json").write_text('{"the": "last good parse"}')

    with pytest.raises(dbt.DbtParseError) as raised:
        dbt.prepare(DbtProject(project_dir=project_dir), regulars_env)

    said = str(raised.value)
    assert "orders_by_moon_phase" in said and "moon_phases" in said
    assert said.endswith("Fix what dbt names above, then run again.")
    # The code location goes on reading the last manifest that parsed.
    assert (target / "manifest.json").read_text() == '{"the": "last good parse"}'
    assert not list(Path(target).glob(".parse-*"))


def test_a_backfill_run_leaves_out_the_relationship_tests_towards_its_later_runs(
    regulars_env: Settings, fresh_dbt_manifest
):
    """A backfill cuts the dbt asset into runs; on a new warehouse, a run of the messaging
    staging model alone meets its relationship test towards the ordering customers, which a
    later run builds. Outside a backfill dbt's default (eager) runs that test, and it fails on
    the missing table; in a backfill's run it is left out and the run succeeds."""
    from dagster._core.storage.tags import BACKFILL_ID_TAG

    from orchestration.materialize import materialize_everything
    from regulars.cli.demo import demo_apis

    messaging = dg.AssetKey(["staging", "stg_messaging__delivery_events"])
    left_out = dg.AssetSelection.all() - dg.AssetSelection.assets(messaging)

    def run(tags: dict) -> tuple[bool, set[str]]:
        with demo_apis(regulars_env), dg.DagsterInstance.ephemeral() as instance:
            result = materialize_everything(
                regulars_env, instance, raise_on_error=False, exclude=left_out, tags=tags
            )
            records = instance.get_records_for_run(
                result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000
            ).records
        checks = {r.event_log_entry.dagster_event.event_specific_data.check_name for r in records}
        return result.success, checks

    succeeded, checks = run({})
    assert not succeeded
    succeeded, checks = run({BACKFILL_ID_TAG: "a-backfill"})
    assert succeeded
    assert "unique_stg_messaging__delivery_events_event_id" in checks
    assert not [name for name in checks if name.startswith("relationships_")]
