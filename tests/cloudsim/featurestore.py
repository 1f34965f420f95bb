"""The SageMaker Feature Store runtime's PutRecord on loopback: moto has no Feature Store
runtime, and the features job puts its online rows there.

It answers `PUT /FeatureGroup/<name>` as the service does: the group must exist (the template's
`AWS::SageMaker::FeatureGroup`), every feature named in the record must be one of the group's
feature definitions, the record identifier and event time must be present; otherwise a
`ValidationException` (400) or `ResourceNotFound` (404). Accepted records are kept, newest
event time per record id winning, as the online store does. A job reaches it through
`AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


class FeatureStoreRuntime:
    """`groups`: name -> (record id feature, event time feature, feature names)."""

    def __init__(self, groups: dict[str, tuple[str, str, set[str]]]) -> None:
        self.groups = groups
        self.records: dict[str, dict[str, dict[str, str]]] = {g: {} for g in groups}
        self.lock = threading.Lock()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = store.put(unquote(self.path.split("/FeatureGroup/", 1)[1]),
                                           body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", answer["__type"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, group: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if group not in self.groups:
            return 404, {"__type": "ResourceNotFound", "message": f"no feature group {group}"}
        record_id, event_time, features = self.groups[group]
        record = {f["FeatureName"]: f["ValueAsString"] for f in body.get("Record", [])}
        unknown = sorted(set(record) - features)
        missing = [k for k in (record_id, event_time) if k not in record]
        if unknown or missing:
            return 400, {"__type": "ValidationException",
                         "message": f"unknown features {unknown}, missing {missing}"}
        with self.lock:
            kept = self.records[group].get(record[record_id])
            if kept is None or kept[event_time] <= record[event_time]:
                self.records[group][record[record_id]] = record
        return 200, {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
