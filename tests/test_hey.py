"""hey's per-request CSV, parsed and summarised; and one real hey run on loopback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from servebench.loadrun import ClosedLoopRun
from servebench.measure import hey

pytestmark = pytest.mark.unit

KNOWN_CSV = (
    ",".join(hey.HEY_COLUMNS)
    + """
0.0100,0.0010,0.0000,0.0001,0.0088,0.0001,200,0.0000
0.0200,0.0000,0.0000,0.0001,0.0198,0.0001,200,0.0050
0.0300,0.0000,0.0000,0.0001,0.0298,0.0001,200,0.0100
0.0400,0.0000,0.0000,0.0001,0.0398,0.0001,500,0.0150
"""
)


def test_parse_csv_renames_and_types_columns() -> None:
    frame = hey.parse_csv(KNOWN_CSV)
    assert list(frame.columns) == list(hey.HEY_COLUMNS.values())
    assert frame["status_code"].tolist() == [200, 200, 200, 500]
    assert frame["response_time_s"].sum() == pytest.approx(0.1)


def test_errors_count_non_2xx_and_missing_answers() -> None:
    run = ClosedLoopRun(hey.parse_csv(KNOWN_CSV), requested=6, concurrency=2, wall_s=1.0)
    # one 500 plus two requests hey never got an answer for
    assert run.errors == 3
    # first send at 0.0, last answer at 0.015 + 0.04
    assert run.total_s == pytest.approx(0.055)


def test_parse_csv_rejects_other_formats() -> None:
    with pytest.raises(hey.HeyError, match="lacks columns"):
        hey.parse_csv("a,b\n1,2\n")


def test_render_summary_in_heys_layout() -> None:
    run = ClosedLoopRun(hey.parse_csv(KNOWN_CSV), requested=4, concurrency=2, wall_s=1.0)
    text = hey.render_summary(run)
    assert "Slowest:\t0.0400 secs" in text
    assert "Fastest:\t0.0100 secs" in text
    assert "Average:\t0.0250 secs" in text
    assert "[500]\t1 responses" in text
    counts = [int(line.split("[")[1].split("]")[0]) for line in text.splitlines() if "\t|" in line]
    assert sum(counts) == 4


def test_size_arguments_are_exclusive() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        hey.run_hey("http://127.0.0.1:1/", b"{}", concurrency=1)
    with pytest.raises(ValueError, match="requests"):
        hey.run_hey("http://127.0.0.1:1/", b"{}", concurrency=10, requests=5)


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        status = 200 if self.headers.get("content-type") == "application/json" else 415
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/age"
    server.shutdown()


def test_real_hey_run_records_every_request(echo_url: str) -> None:
    run = hey.run_hey(echo_url, b'{"inputs": "x"}', concurrency=4, requests=40)
    assert run.answered == 40
    assert run.errors == 0
    assert (run.records["status_code"] == 200).all()
    assert 0 < run.total_s < 30
    # hey's own CPU time, as its child process: some, and no more than its wall time allows
    # on the two CPUs it could use here (unpinned)
    assert 0 < run.loadgen_cpu_s <= 2 * run.wall_s


def test_real_hey_counts_refused_connections_as_errors() -> None:
    from servebench.process import free_port

    run = hey.run_hey(f"http://127.0.0.1:{free_port()}/age", b"{}", concurrency=2, requests=6)
    assert run.errors == 6


def test_hey_sends_n_rounded_down_to_a_multiple_of_c() -> None:
    assert hey.requests_sent(1000, 16, answered=992) == 992
    assert hey.requests_sent(1000, 50, answered=1000) == 1000
    assert hey.requests_sent(None, 16, answered=1234) == 1234


def test_real_hey_with_n_not_a_multiple_of_c_has_no_errors(echo_url: str) -> None:
    run = hey.run_hey(echo_url, b'{"inputs": "x"}', concurrency=16, requests=100)
    assert run.answered == run.requested == 96
    assert run.errors == 0
