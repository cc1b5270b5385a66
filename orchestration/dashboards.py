"""The dashboards BI reads, as the last assets of the lineage.

Each dashboard is a dbt exposure (dbt_project/models/marts/_marts__exposures.yml); dagster-dbt
makes assets of models, seeds and snapshots, not exposures, so they are declared here from the
same manifest: one external asset per exposure, downstream of the serving copy it reads and of
the marts its charts query. Nothing in Dagster materialises them: Superset reads the copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt.dbt_manifest import validate_manifest

from orchestration.dbt import RegularsDbtTranslator, dbt_project
from orchestration.serving import SERVING_KEY
from regulars.settings import Settings

DASHBOARDS_GROUP = "dashboards"


def dashboard_specs(manifest: Mapping[str, Any]) -> list[dg.AssetSpec]:
    translator = RegularsDbtTranslator()
    specs = []
    for exposure in manifest.get("exposures", {}).values():
        if exposure.get("type") != "dashboard":
            continue
        marts = [
            translator.get_asset_key(manifest["nodes"][unique_id])
            for unique_id in exposure["depends_on"]["nodes"]
            if unique_id in manifest["nodes"]
        ]
        metadata: dict[str, Any] = {"dbt exposure": exposure["unique_id"]}
        if exposure.get("url"):
            metadata["url"] = dg.MetadataValue.url(exposure["url"])
        specs.append(
            dg.AssetSpec(
                key=dg.AssetKey(["dashboards", exposure["name"]]),
                deps=[SERVING_KEY, *marts],
                description=" ".join(exposure.get("description", "").split()),
                group_name=DASHBOARDS_GROUP,
                kinds={"superset"},
                owners=[f"team:{_team(exposure)}"] if _team(exposure) else None,
                metadata=metadata,
            )
        )
    return sorted(specs, key=lambda spec: spec.key.to_user_string())


def _team(exposure: Mapping[str, Any]) -> str | None:
    name = (exposure.get("owner") or {}).get("name")
    return "-".join(name.lower().split()) if name else None


def definitions(settings: Settings) -> dg.Definitions:
    # The dict dagster-dbt parsed for the dbt assets: it caches each manifest path's parse, where
    # reading the file again here cost 0.2-0.5 s of every definitions build.
    manifest = validate_manifest(dbt_project(settings).manifest_path)
    return dg.Definitions(assets=dashboard_specs(manifest))
