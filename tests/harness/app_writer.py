"""The application, in a process of its own, updating documents while a migration transforms them.

It picks documents at random and bumps their ``b`` property by read-modify-write with an ETag condition (a 412
means someone else wrote first: it reads again), as an application using optimistic concurrency does. Every
update the service confirmed is appended to ``LOG`` as ``id value`` (flushed), so a test can check that none
was overwritten: each document must end with ``b`` at least the highest confirmed value. An update whose
answer was lost (a cut connection) is not logged, since nobody knows whether it landed.

Usage: ``python -m tests.harness.app_writer URL DATABASE CONTAINER COUNT LOG`` (stops on SIGTERM).
"""

from __future__ import annotations

import random
import signal
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    import urllib3
    from azure.core import MatchConditions
    from azure.cosmos import CosmosClient
    from azure.cosmos import exceptions as cosmos_errors

    from cosmigrate.config import EMULATOR_KEY

    urllib3.disable_warnings()
    url, database, name, count, log_path = argv
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    log = Path(log_path).open("a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
    pick = random.Random(11)
    with CosmosClient(url, credential=EMULATOR_KEY, connection_verify=False) as client:
        container = client.get_database_client(database).get_container_client(name)
        print("ready", flush=True)
        while not stopping:
            n = pick.randrange(int(count))
            doc_id, key = f"d{n:06d}", f"p{n % 97}"
            try:
                document: dict[str, Any] = container.read_item(doc_id, partition_key=key)
                document["b"] = int(document.get("b") or 0) + 1
                container.replace_item(
                    doc_id, document, etag=document["_etag"], match_condition=MatchConditions.IfNotModified
                )
            except cosmos_errors.CosmosAccessConditionFailedError:
                continue  # the migration wrote first: read again, as the application would
            except Exception:  # a fault (when run through the fault proxy): this update's outcome is unknown
                continue
            log.write(f"{doc_id} {document['b']}\n")
            log.flush()
            time.sleep(0.02)  # an application's pace, not a benchmark's: the machine's cores are shared


if __name__ == "__main__":
    main(sys.argv[1:])
