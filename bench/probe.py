#!/usr/bin/python3
"""What one readiness probe of the runner costs, by the way it is made.

Starts a `mountat runner` of its own (a scratch build directory and socket, its diagnostics server
on 127.0.0.1, with network "none": the runner refuses a TCP listener its actions could reach), then times, interleaved round by round, one probe of each kind:

  http-get       GET /-/ready on a new TCP connection from this process, as the kubelet makes an httpGet
                 probe (deploy/kubernetes/worker.yaml): no process started
  bash-dev-tcp   bash (Essential in Debian, so in the runner image) doing the same GET through /dev/tcp:
                 the cheapest command a Docker HEALTHCHECK could run in the image
  busybox-wget   busybox wget of /-/ready: not in the image, for reference
  mountat-probe  `mountat probe --config CONFIG`: a Node process calling CheckReadiness over the socket,
                 what the exec readiness probe ran and what the image's HEALTHCHECK runs

Each command is started with os.posix_spawn and reaped with os.wait4, from this small process
(not from Node: child_process forks the whole Node process). Per probe: wall time (start to
reaped, or to the response read), the CPU time of the probing process (wait4's rusage; this
process's own for http-get), and the CPU time the runner spent (its /proc/PID/stat ticks
before and after each probe, summed over the run: ticks are coarse, sums are not). Every probe
must succeed. Ratios are against http-get in the same run.

usage: /usr/bin/python3 bench/probe.py [--rounds N] [--quick] [--json FILE]   (as root, after `npm run build`;
       `npm run bench -- probe` builds first)
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
now = time.perf_counter_ns


def fail(message):
    print(f"probe.py: {message}", file=sys.stderr)
    sys.exit(1)


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_runner(scratch, port):
    build = os.path.join(scratch, "build")
    os.mkdir(build)
    config = os.path.join(scratch, "runner.json")
    with open(config, "w") as f:
        json.dump({
            "buildDirectoryPath": build,
            "grpcServers": [{"listenPaths": [os.path.join(scratch, "runner.sock")]}],
            "readinessCheckingPathnames": [build],
            "stateDirectory": os.path.join(scratch, "state"),
            # A TCP listener only where actions have networks of their own (docs/runner.md, "The runner's listeners").
            "network": "none",
            "global": {"diagnosticsHttpServer": {"httpServers": [{"listenAddresses": [f"127.0.0.1:{port}"], "authenticationPolicy": {"allow": {}}}]}},
        }, f)
    log = os.open(os.path.join(scratch, "runner.log"), os.O_WRONLY | os.O_CREAT, 0o644)
    node = shutil.which("node")
    # unshare execs node: the pid is the runner's. A mount namespace of its own, as the tests give it.
    argv = ["/usr/bin/unshare", "--mount", "--propagation", "private", node, os.path.join(REPO, "bin", "mountat.js"), "runner", "--config", config]
    pid = os.posix_spawn(argv[0], argv, {"PATH": os.environ["PATH"]}, file_actions=[(os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)])
    for _ in range(600):
        try:
            if http_get(port) == 200:
                return pid, config
        except OSError:
            pass
        time.sleep(0.05)
    fail(f"the runner did not become ready: {open(os.path.join(scratch, 'runner.log')).read()}")


def http_get(port):
    """One GET /-/ready on a new connection (the kubelet opens one per probe); the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/-/ready")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="5 rounds: a smoke run, figures not worth quoting")
    parser.add_argument("--json", metavar="FILE", help="also write every probe's figures as JSON")
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds
    if os.geteuid() != 0:
        fail("run as root (the runner needs its capabilities)")
    busybox = shutil.which("busybox") or fail("busybox not found (apt-get install busybox-static)")

    scratch = tempfile.mkdtemp(prefix="mountat-bench-probe-")
    port = free_port()
    runner, config = start_runner(scratch, port)
    devnull = os.open("/dev/null", os.O_RDWR)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    url = f"http://127.0.0.1:{port}/-/ready"
    # A 200 status line or exit 1: the same answer the GET checks.
    bash_get = f'exec 3<>/dev/tcp/127.0.0.1/{port} && printf "GET /-/ready HTTP/1.0\\r\\n\\r\\n" >&3 && read -r status <&3 && [[ $status == *" 200 "* ]]'
    commands = {
        "bash-dev-tcp": ["/bin/bash", "-c", bash_get],
        "busybox-wget": [busybox, "wget", "-q", "-O", "/dev/null", url],
        "mountat-probe": [shutil.which("node"), os.path.join(REPO, "bin", "mountat.js"), "probe", "--config", config],
    }

    def spawned(argv):
        start = now()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = now() - start
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            fail(f"{' '.join(argv)}: status {status}")
        return wall, (usage.ru_utime + usage.ru_stime) * 1e3

    def in_process():
        cpu = time.process_time_ns()
        start = now()
        status = http_get(port)
        wall = now() - start
        if status != 200:
            fail(f"GET {url}: {status}")
        return wall, (time.process_time_ns() - cpu) / 1e6

    contenders = [("http-get", in_process)] + [(name, (lambda argv=argv: spawned(argv))) for name, argv in commands.items()]
    samples = {name: {"wall": [], "cpu": [], "runnerTicks": 0} for name, _ in contenders}
    try:
        for _ in range(3):  # warm-up: page cache, the runner's JIT
            for _, probe in contenders:
                probe()
        for k in range(rounds):
            # Rotated, so that no contender always follows the same one.
            for name, probe in contenders[k % len(contenders):] + contenders[:k % len(contenders)]:
                before = cpu_ticks(runner)
                wall, cpu = probe()
                samples[name]["runnerTicks"] += cpu_ticks(runner) - before
                samples[name]["wall"].append(wall / 1e6)
                samples[name]["cpu"].append(cpu)
    finally:
        os.kill(runner, 15)
        os.waitpid(runner, 0)
        shutil.rmtree(scratch)

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    base = statistics.median(samples["http-get"]["wall"])
    base_cpu = statistics.fmean(samples["http-get"]["cpu"]) + samples["http-get"]["runnerTicks"] * 1e3 / TICK / rounds
    print(f"{rounds} rounds, load {load}, nproc {os.cpu_count()}")
    print("| probe | wall median ms | wall p90 ms | probing process CPU ms | runner CPU ms | total CPU ms | wall ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    report = {}
    for name, s in samples.items():
        wall = sorted(s["wall"])
        runner_cpu = s["runnerTicks"] * 1e3 / TICK / rounds
        total = statistics.fmean(s["cpu"]) + runner_cpu
        print(f"| {name} | {statistics.median(wall):.2f} | {wall[int(len(wall) * 0.9)]:.2f} | {statistics.fmean(s['cpu']):.2f} | {runner_cpu:.2f} | {total:.2f} | {statistics.median(wall) / base:.1f}x | {total / base_cpu:.1f}x |")
        report[name] = {"wallMedianMs": statistics.median(wall), "wallP90Ms": wall[int(len(wall) * 0.9)], "probingCpuMs": statistics.fmean(s["cpu"]),
                        "runnerCpuMs": runner_cpu, "totalCpuMs": total, "wallMs": s["wall"], "probingCpuMsEach": s["cpu"]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "load": load, "nproc": os.cpu_count(), "probes": report}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


main()
