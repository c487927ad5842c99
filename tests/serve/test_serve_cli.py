"""`genlab serve` as a user runs it: a process on a port, one-line errors for a bad run or a taken port, and a
store that keeps every acknowledged vote when the server is killed with SIGKILL mid-way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx2 as httpx

from genlab.align.store import FeedbackStore


def genlab_serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "genlab", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("genlab serve did not start")


def test_a_run_that_cannot_be_loaded_is_one_line(tmp_path):
    done = genlab_serve(str(tmp_path / "nope"), "--port", str(free_port()))
    _, err = done.communicate(timeout=60)
    assert done.returncode != 0 and len(err.strip().splitlines()) == 1 and "nope" in err


def test_a_taken_port_is_one_line(served_runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = genlab_serve(str(served_runs["docs"]), "--port", str(port))
        _, err = done.communicate(timeout=60)
    assert done.returncode != 0 and err.strip().splitlines() == [
        f"genlab: error: port {port} on 127.0.0.1 is taken by another program; choose another with --port"]


def test_votes_survive_a_sigkill(served_runs, tmp_path):
    store, port = tmp_path / "feedback.sqlite", free_port()
    url = f"http://127.0.0.1:{port}"
    server = genlab_serve(str(served_runs["docs"]), "--port", str(port), "--store", str(store))
    wait_until_up(url, server)
    acknowledged: list[int] = []
    lock, stop = threading.Lock(), threading.Event()

    def voter(k: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for i in range(1000):
                if stop.is_set():
                    return
                try:
                    shown = http.post("/v1/arena/battles", json={
                        "models": ["docs", "docs"], "controls": {"max_tokens": 2, "seed": k * 1000 + i},
                        "controls_b": {"max_tokens": 2, "temperature": 1.5}})
                    vote = http.post(f"/v1/arena/battles/{shown.json()['id']}/vote",
                                     json={"winner": "ab"[i % 2], "rater": f"client-{k}", "reason": "r" * i})
                except (httpx.HTTPError, KeyError, ValueError):
                    return  # the server is gone
                if vote.status_code == 200:
                    with lock:
                        acknowledged.append(vote.json()["comparison_id"])

    clients = [threading.Thread(target=voter, args=(k,)) for k in range(8)]
    for c in clients:
        c.start()
    deadline = time.time() + 30
    while len(acknowledged) < 40 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)  # mid-way: votes are in flight
    server.wait()
    stop.set()
    for c in clients:
        c.join()
    assert len(acknowledged) >= 40

    with FeedbackStore(store, create=False, readonly=True) as kept:
        assert kept.check_integrity() == "ok"
        stored = {row["comparison_id"]: row for row in kept.comparisons()}
    assert set(acknowledged) <= set(stored)  # every vote that got a 2xx is there
    assert all(stored[i]["rater"].startswith("client-") for i in acknowledged)

    server = genlab_serve(str(served_runs["docs"]), "--port", str(port), "--store", str(store))  # restarted
    try:
        wait_until_up(url, server)
        shown = httpx.post(url + "/v1/arena/battles", json={"models": ["docs", "docs"], "controls": {"max_tokens": 2},
                                                           "controls_b": {"max_tokens": 3}}, timeout=30).json()
        vote = httpx.post(f"{url}/v1/arena/battles/{shown['id']}/vote", json={"winner": "tie"}, timeout=30)
        assert vote.status_code == 200 and vote.json()["comparison_id"] > max(stored)
    finally:
        server.terminate()
        server.wait(10)
