#!/usr/bin/env python3
"""Portcullis against the seed design, side by side, in one run.

Started by `scripts/bench` (which builds and installs what this needs). It
starts the release Portcullis with a fresh data directory and the Express
peer from ../shared/peers/express-seed, drives both with wrk over loopback,
samples their resident memory from /proc, and prints one Markdown table of
figures and ratios. Every ratio compares numbers measured in this run.
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "violet kettle anthem 42"


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class PeakRss:
    """Samples a process's RSS every 50 ms while in use."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self):
        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, rss_mb(self.pid))
                time.sleep(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = json.dumps(body) if body is not None else None
    all_headers = {"Content-Type": "application/json"} if payload else {}
    all_headers.update(headers or {})
    connection.request(method, path, body=payload, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    cookies = response.headers.get_all("Set-Cookie") or []
    connection.close()
    return response.status, cookies, data


def wait_until_up(port, path, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            status, _, _ = request(port, "GET", path)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered {path} on port {port} within {seconds} s")


class Portcullis:
    name = "Portcullis"

    def __init__(self, binary, workdir, port, extra_env=None, label="portcullis"):
        self.port = port
        data = os.path.join(workdir, f"{label}-data")
        env = dict(os.environ)
        env.update(
            PORTCULLIS_DATA_DIR=data,
            LEPTOS_SITE_ADDR=f"127.0.0.1:{port}",
            LEPTOS_SITE_ROOT=os.path.join(workdir, "site"),
            RUST_LOG="warn",
            # One account takes the whole storm here; attempts in flight
            # count against it, so its throttle is out of the way (the peer
            # has none). This measures hashing, not throttling.
            PORTCULLIS_LOGIN_MAX_FAILURES="1000000",
            # Likewise the per-network and backstop limits: wrk's closing
            # connections abandon the attempts in flight at the end of each
            # storm, and an abandoned attempt stays counted (the safe side),
            # so one storm would lock the next out of 127.0.0.1.
            PORTCULLIS_LOGIN_IP_MAX_FAILURES="1000000",
            PORTCULLIS_LOGIN_BACKSTOP_FAILURES="1000000",
        )
        env.update(extra_env or {})
        self.log = open(os.path.join(workdir, f"{label}.log"), "w")
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=self.log)
        wait_until_up(port, "/readyz")

    def register(self, email):
        status, _, body = request(self.port, "POST", "/auth/register", {"email": email, "password": PASSWORD})
        assert status == 202, (status, body)

    def login_body(self, email):
        return json.dumps({"email": email, "password": PASSWORD, "token_delivery": "body"})

    login_path, me_path, logout_path = "/auth/login", "/auth/me", "/auth/logout"
    logout_header = "Authorization: Bearer "

    def session_token(self, email):
        status, _, body = request(self.port, "POST", self.login_path, json.loads(self.login_body(email)))
        if status != 200:
            return None
        return json.loads(body)["tokens"]["access_token"]

    def me_header(self, token):
        return f"Authorization: Bearer {token}"


class Peer:
    name = "Express peer"

    def __init__(self, source, workdir, port):
        self.port = port
        peer_dir = os.path.join(workdir, "express-seed")
        if not os.path.isdir(os.path.join(peer_dir, "node_modules")):
            shutil.copytree(source, peer_dir, ignore=shutil.ignore_patterns("node_modules"), dirs_exist_ok=True)
            log("installing the peer's npm packages")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=peer_dir, check=True)
        env = dict(os.environ, PORT=str(port), DB_PATH=os.path.join(workdir, "peer.db"))
        self.log = open(os.path.join(workdir, "peer.log"), "w")
        self.process = subprocess.Popen(["node", "server.js"], cwd=peer_dir, env=env, stdout=self.log, stderr=self.log)
        wait_until_up(port, "/hello")

    def register(self, email):
        status, _, body = request(self.port, "POST", "/api/user/register", {"user": {"email": email, "password": PASSWORD}})
        assert status == 201, (status, body)

    def login_body(self, email):
        return json.dumps({"user": {"email": email, "password": PASSWORD}})

    login_path, me_path, logout_path = "/api/user/login", "/api/user/me", "/api/user/logout"
    logout_header = "Cookie: accessToken="

    def session_token(self, email):
        status, cookies, _ = request(self.port, "POST", self.login_path, json.loads(self.login_body(email)))
        if status != 200:
            return None
        for cookie in cookies:
            match = re.match(r"accessToken=([^;]+)", cookie)
            if match:
                return match.group(1)
        return None

    def me_header(self, token):
        return f"Cookie: accessToken={token}"


class HangingReceiver:
    """A webhook endpoint that accepts connections and never answers."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(1024)
        self.port = self.socket.getsockname()[1]
        self.held = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)


def wrk(port, path, script, script_args, connections, seconds, threads=2):
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", os.path.join(HERE, "wrk", script), f"http://127.0.0.1:{port}{path}", "--", *script_args,
    ]
    env = dict(os.environ, WRK_RESULT_LUA=os.path.join(HERE, "wrk", "result.lua"))
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line[len("WRK_RESULT "):])
            seconds_taken = result["duration_us"] / 1e6
            result["ok_per_s"] = (result["requests"] - result["non2xx"]) / seconds_taken
            result["per_s"] = result["requests"] / seconds_taken
            result["p99_ms"] = result["p99_us"] / 1000
            # Closed loop: every connection always has one request in flight,
            # so throughput is connections / mean latency (Little's law). Used
            # where wrk's own duration includes idle time (logout.lua's
            # threads stop when their tokens run out; wrk still waits -d).
            result["little_per_s"] = connections / (result["mean_us"] / 1e6) if result["mean_us"] else 0.0
            return result
    raise SystemExit(f"wrk printed no result:\n{output}")


def login_storm(server, email, connections, seconds):
    return wrk(server.port, server.login_path, "request.lua", ["POST", server.login_body(email)], connections, seconds)


def fresh_sessions(server, email, count):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        tokens = [t for t in pool.map(lambda _: server.session_token(email), range(count)) if t]
    return tokens


def raw_argon2(binary, seconds):
    output = subprocess.run([binary, str(os.cpu_count()), str(seconds)], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"verifies_per_second=([\d.]+)", output).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portcullis", required=True, help="the release server binary")
    parser.add_argument("--argon2-raw", required=True, help="the raw argon2 verify program")
    parser.add_argument("--peer", required=True, help="the express-seed source directory")
    parser.add_argument("--workdir", default=None, help="where the peer's packages and the databases go")
    parser.add_argument("--seconds", type=int, default=10, help="length of each throughput run")
    parser.add_argument("--sessions", type=int, default=2000, help="fresh sessions for the logout run")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="portcullis-bench-")
    os.makedirs(workdir, exist_ok=True)
    for stale in ("portcullis-data", "hanging-data", "peer.db", "peer.db-wal", "peer.db-shm"):
        path = os.path.join(workdir, stale)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    seconds = args.seconds
    ours = Portcullis(args.portcullis, workdir, 3200)
    peer = Peer(args.peer, workdir, 3100)
    rows, figures = [], {}
    try:
        idle = {s.name: rss_mb(s.process.pid) for s in (ours, peer)}
        log(f"raw argon2 verify on {os.cpu_count()} threads, {seconds} s")
        raw = raw_argon2(args.argon2_raw, seconds)

        results = {}
        for server in (ours, peer):
            email = f"bench-{int(time.time() * 1000)}@example.com"
            server.register(email)
            token = server.session_token(email)
            log(f"{server.name}: me, 8 connections, {seconds} s")
            me = wrk(server.port, server.me_path, "request.lua", ["GET", "", server.me_header(token)], 8, seconds)
            log(f"{server.name}: login storm, 16 connections, {seconds} s")
            logins = login_storm(server, email, 16, seconds)
            log(f"{server.name}: the same storm again, with me on 4 more connections")
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as background:
                storm = background.submit(login_storm, server, email, 16, seconds)
                time.sleep(1)
                me_during = wrk(server.port, server.me_path, "request.lua", ["GET", "", server.me_header(token)], 4, max(seconds - 2, 1))
                storm.result()
            log(f"{server.name}: {args.sessions} fresh sessions for the logout run")
            tokens = fresh_sessions(server, email, args.sessions)
            token_file = os.path.join(workdir, f"tokens-{server.port}.txt")
            with open(token_file, "w") as out:
                out.write("\n".join(tokens) + "\n")
            log(f"{server.name}: logout of {len(tokens)} sessions, 32 connections, each once")
            logout = wrk(server.port, server.logout_path, "logout.lua", [token_file, "2", server.logout_header], 32, 60)
            log(f"{server.name}: login storm, 64 connections, 20 s, sampling memory")
            with PeakRss(server.process.pid) as peak:
                big_storm = login_storm(server, email, 64, 20)
            after_storm = rss_mb(server.process.pid)
            results[server.name] = dict(
                me=me, logins=logins, me_during=me_during, logout=logout, big_storm=big_storm, sessions=len(tokens),
                peak_rss=peak.peak, rss_right_after=after_storm,
            )
        # The same instance again, sending its events to a webhook receiver
        # that accepts and never answers: sign-in and sign-out must not slow.
        receiver = HangingReceiver()
        hanging = Portcullis(args.portcullis, workdir, 3300, extra_env={
            "PORTCULLIS_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/hooks",
            "PORTCULLIS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }, label="hanging")
        try:
            email = f"bench-hanging-{int(time.time() * 1000)}@example.com"
            hanging.register(email)
            baseline_email = f"bench-baseline-{int(time.time() * 1000)}@example.com"
            ours.register(baseline_email)
            # Interleaved, twice each, so that both see the same machine.
            baseline_runs, hanging_runs = [], []
            for round_ in (1, 2):
                log(f"login storm, 16 connections, {seconds} s: without webhooks ({round_}/2)")
                baseline_runs.append(login_storm(ours, baseline_email, 16, seconds)["ok_per_s"])
                log(f"login storm, 16 connections, {seconds} s: hanging webhook receiver ({round_}/2)")
                hanging_runs.append(login_storm(hanging, email, 16, seconds)["ok_per_s"])
            hanging_logins = dict(ok_per_s=sum(hanging_runs) / 2, runs=hanging_runs)
            baseline_logins = dict(ok_per_s=sum(baseline_runs) / 2, runs=baseline_runs)
            tokens = fresh_sessions(hanging, email, args.sessions)
            token_file = os.path.join(workdir, f"tokens-{hanging.port}.txt")
            with open(token_file, "w") as out:
                out.write("\n".join(tokens) + "\n")
            log(f"Portcullis, hanging webhook receiver: logout of {len(tokens)} sessions, 32 connections")
            hanging_logout = wrk(hanging.port, hanging.logout_path, "logout.lua", [token_file, "2", hanging.logout_header], 32, 60)
            results["hanging"] = dict(logins=hanging_logins, baseline_logins=baseline_logins,
                                      logout=hanging_logout, sessions=len(tokens),
                                      receiver_connections=len(receiver.held))
        finally:
            hanging.process.terminate()
            hanging.process.wait(timeout=30)
        log("waiting 60 s for memory to settle after the storms")
        time.sleep(60)
        for server in (ours, peer):
            results[server.name]["rss_minute_after"] = rss_mb(server.process.pid)
    finally:
        for server in (ours, peer):
            server.process.terminate()
            server.process.wait(timeout=30)

    p, e = results[ours.name], results[peer.name]

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "n/a"

    rows = [
        ("`/auth/me` per s (8 connections)", f"{p['me']['ok_per_s']:,.0f}", f"{e['me']['ok_per_s']:,.0f}", ratio(p["me"]["ok_per_s"], e["me"]["ok_per_s"]), "≥ 15x the peer"),
        ("Logins per s (16 connections)", f"{p['logins']['ok_per_s']:,.1f}", f"{e['logins']['ok_per_s']:,.1f}", ratio(p["logins"]["ok_per_s"], e["logins"]["ok_per_s"]), "≥ 1.5x the peer"),
        ("Logins per s against raw argon2 verify (" + f"{raw:,.1f}/s on {os.cpu_count()} threads)", f"{p['logins']['ok_per_s'] / raw:.0%}", f"{e['logins']['ok_per_s'] / raw:.0%}", "", "≥ 90%"),
        ("Busy (503) answers in the 16-connection storm", f"{p['logins']['non2xx']:,}", f"{e['logins']['non2xx']:,}", "", ""),
        ("`/auth/me` p99 during the login storm (4 connections)", f"{p['me_during']['p99_ms']:.1f} ms", f"{e['me_during']['p99_ms']:.1f} ms", ratio(e["me_during"]["p99_ms"], p["me_during"]["p99_ms"]) + " lower", "< 25 ms"),
        ("`/auth/me` per s during the login storm", f"{p['me_during']['ok_per_s']:,.0f}", f"{e['me_during']['ok_per_s']:,.0f}", ratio(p["me_during"]["ok_per_s"], e["me_during"]["ok_per_s"]), ""),
        ("Logout per s (32 connections, each session once; connections / mean latency)", f"{p['logout']['little_per_s']:,.0f}", f"{e['logout']['little_per_s']:,.0f}", ratio(p["logout"]["little_per_s"], e["logout"]["little_per_s"]), ""),
        ("Logouts answered 200 / sessions", f"{p['logout']['requests'] - p['logout']['non2xx']:,} / {p['sessions']:,}", f"{e['logout']['requests'] - e['logout']['non2xx']:,} / {e['sessions']:,}", "", ""),
        ("Logout p99", f"{p['logout']['p99_ms']:.1f} ms", f"{e['logout']['p99_ms']:.1f} ms", ratio(e["logout"]["p99_ms"], p["logout"]["p99_ms"]) + " lower", "< 20 ms"),
        ("Logins per s, 64 connections for 20 s", f"{p['big_storm']['ok_per_s']:,.1f}", f"{e['big_storm']['ok_per_s']:,.1f}", ratio(p["big_storm"]["ok_per_s"], e["big_storm"]["ok_per_s"]), ""),
        ("Resident memory at idle", f"{idle[ours.name]:,.0f} MB", f"{idle[peer.name]:,.0f} MB", "", ""),
        ("Peak resident memory in the 64-connection storm", f"{p['peak_rss']:,.0f} MB", f"{e['peak_rss']:,.0f} MB", "", "≤ 200 MB"),
        ("Resident memory one minute after the storm", f"{p['rss_minute_after']:,.0f} MB", f"{e['rss_minute_after']:,.0f} MB", "", "≤ 80 MB"),
    ]
    h = results["hanging"]
    hanging_rows = [
        ("Logins per s (16 connections; mean of two interleaved runs each)", f"{h['baseline_logins']['ok_per_s']:,.1f}", f"{h['logins']['ok_per_s']:,.1f}", ratio(h["logins"]["ok_per_s"], h["baseline_logins"]["ok_per_s"])),
        ("Logout per s (32 connections, each session once)", f"{p['logout']['little_per_s']:,.0f}", f"{h['logout']['little_per_s']:,.0f}", ratio(h["logout"]["little_per_s"], p["logout"]["little_per_s"])),
        ("Logout p99", f"{p['logout']['p99_ms']:.1f} ms", f"{h['logout']['p99_ms']:.1f} ms", ratio(h["logout"]["p99_ms"], p["logout"]["p99_ms"])),
        ("Logouts answered 200 / sessions", f"{p['logout']['requests'] - p['logout']['non2xx']:,} / {p['sessions']:,}", f"{h['logout']['requests'] - h['logout']['non2xx']:,} / {h['sessions']:,}", ""),
    ]
    today = datetime.date.today().isoformat()
    print(f"\nMeasured {today} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}), "
          "load generator on the same machine:\n")
    print("| Figure | Portcullis | Express peer | Ratio | Target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nWith webhooks to a receiver that accepts connections and never answers "
          f"({h['receiver_connections']} connections held), against the run above:\n")
    print("| Figure | No webhooks | Hanging receiver | Ratio |")
    print("|---|---|---|---|")
    for row in hanging_rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nRaw data: {json.dumps(results)}", file=sys.stderr)


if __name__ == "__main__":
    main()
