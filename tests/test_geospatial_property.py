"""geospatial_config, a property added by one module of the registry: declared, created, changed in place, shown
and compared like every other — against the local endpoint, read back with the plain client."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.cosmos import CosmosClient

from cosmigrate.errors import InvalidDefinition
from cosmigrate.model.container import ContainerDef
from cosmigrate.model.state import DatabaseState
from cosmigrate.ops.operations import CreateContainer
from tests.conftest import CliResult


def test_geospatial_config_is_declared_checked_and_changed_in_place() -> None:
    flat = ContainerDef.declare("places", "/pk", geospatial_config="Geometry")
    assert flat.to_body()["geospatialConfig"] == {"type": "Geometry"}
    assert "geospatial       Geometry" in flat.lines()
    with pytest.raises(InvalidDefinition, match="geospatial_config must be one of Geography, Geometry"):
        ContainerDef.declare("places", "/pk", geospatial_config="Sphere")
    live = DatabaseState.from_live([ContainerDef.declare("places", "/pk").created()])
    change = CreateContainer(flat).plan(live)
    assert (change.effect, change.changed) == ("update", ("geospatialConfig",))
    assert CreateContainer(ContainerDef.declare("places", "/pk", geospatial_config="Geography")).plan(live).effect == (
        "none"
    )  # the service's default, as it returns it


def test_geospatial_config_round_trip_on_the_endpoint(
    run_cli: Callable[..., CliResult], cosmos: CosmosClient, database_name: str, tmp_path: Path
) -> None:
    for revision, down, kind in (("001", None, "Geometry"), ("002", "001", "Geography")):
        create = f"op.create_container('places', '/pk', geospatial_config={kind!r})"
        undo = (
            "op.delete_container('places')"
            if down is None
            else "op.alter_container('places', geospatial_config='Geometry')"
        )
        (tmp_path / f"{revision}_places.py").write_text(
            f'"""Places as {kind}."""\nrevision = "{revision}"\ndown_revision = {down!r}\n\n\n'
            f"def upgrade(op):\n    {create}\n\n\ndef downgrade(op):\n    {undo}\n"
        )
    env = {"COSMIGRATE_MIGRATIONS": str(tmp_path)}
    assert run_cli("hash", env=env).code == 0

    def stored() -> str:
        places = cosmos.get_database_client(database_name).get_container_client("places").read()
        return str(places["geospatialConfig"]["type"])

    assert run_cli("up", "--to", "001", env=env).code == 0 and stored() == "Geometry"
    plan = run_cli("plan", env=env).stdout
    assert "updating geospatial" in plan and "geospatial Geometry → Geography" in plan
    assert run_cli("up", env=env).code == 0 and stored() == "Geography"
    assert json.loads(run_cli("verify", "--json", env=env).stdout)["clean"]
    assert run_cli("down", "--to", "001", env=env).code == 0 and stored() == "Geometry"
    database = cosmos.get_database_client(database_name)
    places = database.get_container_client("places").read()
    database.replace_container(
        "places", partition_key=places["partitionKey"] and __import__("azure.cosmos").cosmos.PartitionKey("/pk")
    )
    drift = json.loads(run_cli("verify", "--json", env=env).stdout)
    assert [d["message"] for c in drift["containers"] for d in c["differences"]] == [
        "places: geospatialConfig is Geography live, Geometry declared"
    ]
