"""A transform run in a process of its own, for tests that kill it (SIGKILL) and resume.

``fn`` sets ``v = 2`` and appends the document's id to a file (one line per call, flushed), so the test can
count how many times each document was handed to fn across the killed run and the resumed one.

Usage: ``python -m tests.harness.data_worker URL DATABASE CONTAINER CHECKPOINT_CONTAINER KEY CALLS_FILE SLEEP``
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    import urllib3
    from azure.cosmos import CosmosClient

    from cosmigrate.config import EMULATOR_KEY
    from cosmigrate.data import ContainerCheckpointStore, transform_items
    from cosmigrate.store.client import CLIENT_OPTIONS

    urllib3.disable_warnings()
    url, database_name, name, checkpoint_container, key, calls_path, sleep = argv
    calls = Path(calls_path).open("a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run

    def fn(document: dict[str, Any]) -> dict[str, Any]:
        calls.write(document["id"] + "\n")
        calls.flush()
        time.sleep(float(sleep))
        document["v"] = 2
        return document

    with CosmosClient(url, credential=EMULATOR_KEY, connection_verify=False, **CLIENT_OPTIONS) as client:
        database = client.get_database_client(database_name)
        totals = transform_items(
            database.get_container_client(name),
            fn,
            concurrency=4,
            page_size=50,
            checkpoints=ContainerCheckpointStore(database.get_container_client(checkpoint_container)),
            checkpoint_key=key,
            checkpoint_every=1,
        )
    print(json.dumps(totals.to_dict()))


if __name__ == "__main__":
    main(sys.argv[1:])
