#!/usr/bin/python3
"""The benchmark's timer, outside the runner and outside Node.

Every figure of the runner and image suites (`npm run bench -- runner image`), and of the engine
suite's whole-process steps, is taken here, in one small Python process, with one clock
(time.perf_counter_ns): the runner's Run RPCs through Debian's python3-grpcio (the messages
encoded by hand below, no codegen), and every other process (bubblewrap, chroot, the hook, node)
started with os.posix_spawn (glibc's clone(CLONE_VM|CLONE_VFORK): no copy of this process) and
reaped with os.waitpid. Node only orchestrates (builds roots, starts the runners, prints the
report): before this existed, the baselines were started with Node's spawnSync, which forks the
whole Node process and added about 9 ms to every baseline figure.

usage: /usr/bin/python3 bench/outside.py < SPEC.json > RESULT.json
  SPEC.json {"mode": "spawn", ...}   time named commands, interleaved (see spawn_mode)
            {"mode": "runner", ...}  the runner benchmark (see runner_mode)
            {"mode": "image", ...}   the runner image's start, Runs and stop (see image_mode)
Progress goes to stderr. Any failed action (a non-zero exit, a signal, an RPC error, a
response with a non-zero exit code) raises, and the process exits 1 with the reason.
"""
import json
import os
import queue
import statistics
import sys
import time

now = time.perf_counter_ns


class BenchFailure(Exception):
    pass


def log(message):
    print(f"outside.py: {message}", file=sys.stderr, flush=True)


def load_average():
    """The 1-minute load average: other work on the machine moves every figure, so it is recorded."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---------------------------------------------------------------------------------------------
# Protocol buffers by hand: the few fields of buildbarn.runner.RunRequest this bench sends
# (schemas/buildbarn/runner/runner.proto), and RunResponse.exit_code.


def varint(n):
    if n < 0:
        n += 1 << 64  # int64 two's complement, 10 bytes on the wire
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def encode_run_request(arguments, environment, input_root, temporary, stdout, stderr, working_directory=""):
    out = b"".join(length_delimited(1, a) for a in arguments)
    # map<string, string> environment_variables = 2: one entry message {key = 1, value = 2} each.
    for key, value in environment.items():
        out += length_delimited(2, length_delimited(1, key) + length_delimited(2, value))
    if working_directory:
        out += length_delimited(3, working_directory)
    out += length_delimited(4, stdout) + length_delimited(5, stderr)
    out += length_delimited(6, input_root) + length_delimited(7, temporary)
    return out


def read_varint(buf, i):
    shift = result = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def decode_exit_code(buf):
    """RunResponse.exit_code (int64 field 1); proto3 leaves out a 0. Other fields are skipped."""
    exit_code, i = 0, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
            if number == 1:
                exit_code = value - (1 << 64) if value >= 1 << 63 else value
        elif wire == 2:
            size, i = read_varint(buf, i)
            i += size
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise BenchFailure(f"RunResponse: unexpected wire type {wire}")
    if i != len(buf):
        raise BenchFailure("RunResponse: truncated")
    return exit_code


def identity(b):
    return b


# ---------------------------------------------------------------------------------------------
# Processes: posix_spawn and waitpid.


class Spawner:
    """Starts commands {argv, env, stdin?, output?} with posix_spawn; fails on anything but exit 0."""

    def __init__(self):
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)

    def prepare(self, name, command):
        argv = command["argv"]
        if not argv[0].startswith("/"):
            raise BenchFailure(f"{name}: argv[0] must be an absolute path, got {argv[0]!r}")
        actions = []
        if command.get("stdin"):  # opened anew by each child, so each reads it from the start
            actions.append((os.POSIX_SPAWN_OPEN, 0, command["stdin"], os.O_RDONLY, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, self.devnull, 0))
        if command.get("output"):  # stdout and stderr both into this file
            actions.append((os.POSIX_SPAWN_OPEN, 1, command["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, self.devnull, 1))
            actions.append((os.POSIX_SPAWN_DUP2, self.devnull, 2))
        return {"name": name, "path": argv[0], "argv": list(argv), "env": dict(command.get("env", {})), "actions": actions}

    @staticmethod
    def start(p):
        return os.posix_spawn(p["path"], p["argv"], p["env"], file_actions=p["actions"])

    @staticmethod
    def check(p, status):
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return
        why = f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"signal {os.WTERMSIG(status)}"
        raise BenchFailure(f"{p['name']}: {' '.join(p['argv'])}: {why}")

    def timed(self, p):
        """One run, start to reaped, in ns."""
        start = now()
        pid = self.start(p)
        _, status = os.waitpid(pid, 0)
        elapsed = now() - start
        self.check(p, status)
        return elapsed

    def in_flight(self, prepared_per_slot, total, slots):
        """`total` runs, `slots` at once: a new one is spawned as soon as one is reaped. Returns ns."""
        free = list(range(slots))
        running = {}
        started = 0
        start = now()
        while started < total and free:
            slot = free.pop()
            running[self.start(prepared_per_slot[slot])] = slot
            started += 1
        while running:
            pid, status = os.waitpid(-1, 0)
            slot = running.pop(pid, None)
            if slot is None:
                raise BenchFailure(f"reaped pid {pid}, which this bench did not start")
            self.check(prepared_per_slot[slot], status)
            if started < total:
                running[self.start(prepared_per_slot[slot])] = slot
                started += 1
            else:
                free.append(slot)
        return now() - start


# ---------------------------------------------------------------------------------------------
# Interleaving.


def round_order(contenders, k, rotate):
    """The order of round k. Without `rotate`, always as given. With it, round k starts at contender
    k mod n, so none always runs first (on the warmer or colder machine), and every other n rounds
    the list is reversed, so none always runs right after the same other one (an A/A run of two
    identical runners, where B mostly followed A, read B/A 0.98-0.99x with rotation alone)."""
    if not rotate:
        return contenders
    n = len(contenders)
    base = contenders if (k // n) % 2 == 0 else contenders[::-1]
    return [base[(j + k) % n] for j in range(n)]


def interleave(contenders, runs, reps, warmup, rotate, after_warmup=None):
    """Each repetition runs every contender once per round, `runs` rounds, in round_order().
    contenders: [(name, fn)], fn(rep) -> ns, rep -1 in the warm-up rounds. after_warmup(), if
    given, runs between the warm-up and the first repetition.
    Returns {name: [[ms of each run] per repetition]}."""
    order = lambda k: round_order(contenders, k, rotate)
    for k in range(warmup):
        for _, fn in order(k):
            fn(-1)
    if after_warmup:
        after_warmup()
    samples = {name: [] for name, _ in contenders}
    k = 0
    for r in range(reps):
        for name in samples:
            samples[name].append([])
        for _ in range(runs):
            for name, fn in order(k):
                samples[name][r].append(fn(r) / 1e6)
            k += 1
    return samples


def per_rep_means(samples):
    return {name: [statistics.fmean(rep) for rep in reps] for name, reps in samples.items()}


def spawn_mode(spec):
    """{"commands": {name: {argv, env, stdin?}}, "runs", "reps", "warmup", "rotate"}:
    returns {"perRep": {name: [mean ms per repetition]}, "samples": {...}}."""
    spawner = Spawner()
    prepared = {name: spawner.prepare(name, command) for name, command in spec["commands"].items()}
    contenders = [(name, (lambda rep, p=p: spawner.timed(p))) for name, p in prepared.items()]
    samples = interleave(contenders, spec["runs"], spec["reps"], spec["warmup"], spec.get("rotate", False))
    return {"perRep": per_rep_means(samples), "samples": samples}


# ---------------------------------------------------------------------------------------------
# The limit (bench/limit.c) as a server: requests on its stdin, answers on its stdout.


class LimitServer:
    """`limit --serve`, started once with posix_spawn: per action one line "ID ROOT TMP" written to
    its stdin, timed until its answer line ("ID exit 0") is read from its stdout. It starts each
    request as soon as it reads it (one clone of the action's init per request), so `in_flight`
    keeps `slots` requests outstanding in the one pipe."""

    def __init__(self, name, command, actions):
        self.name = name
        self.actions = actions  # [{root, tmp}], one per slot
        to_server, self.requests = os.pipe()
        answers, from_server = os.pipe()
        file_actions = [
            (os.POSIX_SPAWN_DUP2, to_server, 0),
            (os.POSIX_SPAWN_DUP2, from_server, 1),
            (os.POSIX_SPAWN_OPEN, 2, command["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        ]
        self.log_path = command["log"]
        self.pid = os.posix_spawn(command["argv"][0], command["argv"], dict(command.get("env", {})), file_actions=file_actions)
        os.close(to_server)
        os.close(from_server)
        self.answers = os.fdopen(answers, "rb")
        self.sent = 0

    def send(self, slot):
        self.sent += 1
        a = self.actions[slot]
        os.write(self.requests, f"{self.sent} {a['root']} {a['tmp']}\n".encode())

    def answer(self):
        line = self.answers.readline().decode().strip()
        parts = line.split(" ", 1)
        if len(parts) != 2 or parts[1] != "exit 0":
            raise BenchFailure(f"{self.name}: answered {line!r}, not \"ID exit 0\"; its stderr:\n{log_tail(self.log_path)}")
        return int(parts[0])

    def timed(self, slot=0):
        start = now()
        self.send(slot)
        self.answer()
        return now() - start

    def in_flight(self, total, slots):
        """`total` actions with `slots` kept outstanding, each slot on its own root. ns."""
        if len(self.actions) < slots:
            raise BenchFailure(f"{self.name}: {slots} in flight need {slots} action directories, have {len(self.actions)}")
        slot_of = {}
        free = list(range(slots))
        issued = completed = 0
        start = now()
        while issued < total and free:
            slot = free.pop()
            self.send(slot)
            slot_of[self.sent] = slot
            issued += 1
        while completed < issued:
            slot = slot_of.pop(self.answer())
            completed += 1
            if issued < total:
                self.send(slot)
                slot_of[self.sent] = slot
                issued += 1
        return now() - start

    def close(self):
        """End of input: it answers what is outstanding and exits 0."""
        os.close(self.requests)
        _, status = os.waitpid(self.pid, 0)
        self.answers.close()
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            raise BenchFailure(f"{self.name}: exited with wait status {status}; its stderr:\n{log_tail(self.log_path)}")


def process_tree(pid):
    """pid and every process below it (from each process's parent in /proc/N/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def pin_tree(pid, cpus):
    """Every thread of pid and of the processes below it onto `cpus` (what they start inherits it)."""
    for p in process_tree(pid):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            continue  # gone meanwhile (an action that ended)
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass  # ended meanwhile


def thread_cpu_ticks(pid, tid=None):
    """utime + stime (clock ticks) of one thread (/proc/PID/task/TID/stat) or of the whole process."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), after pid and comm


# ---------------------------------------------------------------------------------------------
# The runner.


class Runner:
    """One `mountat runner` behind its UNIX socket. Every Run is counted, so that its log lines
    (one per action, in the order the actions ended) can be matched to the RPCs."""

    def __init__(self, grpc, spec):
        self.grpc = grpc
        self.name = spec["name"]
        self.pid = spec["pid"]
        self.log_path = spec["log"]
        self.actions = spec["actions"]
        self.memory = spec.get("memory", True)  # measured in the memory phase
        self.channel = grpc.insecure_channel("unix:" + spec["socket"])
        try:
            grpc.channel_ready_future(self.channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            raise BenchFailure(f"runner {self.name}: {spec['socket']} not ready within 60 s")
        self.rpc = self.channel.unary_unary("/buildbarn.runner.Runner/Run", request_serializer=identity, response_deserializer=identity)
        self.sent = 0
        self.sent_actions = []  # the action directory of each Run, in the order sent

    def request(self, action, argv):
        self.sent += 1
        self.sent_actions.append(action)
        n = self.sent
        return encode_run_request(argv, {"PATH": "/bin"}, f"{action}/root", f"{action}/tmp", f"{action}/out-{n}", f"{action}/err-{n}")

    def check(self, response_or_error, action):
        if isinstance(response_or_error, self.grpc.RpcError):
            e = response_or_error
            raise BenchFailure(f"runner {self.name}: Run in {action}: RPC failed: {e.code().name}: {e.details()}")
        code = decode_exit_code(response_or_error)
        if code != 0:
            raise BenchFailure(f"runner {self.name}: Run in {action}: exit code {code}")

    def timed(self, action, argv=("/bin/true",)):
        """One Run, request sent to response decoded, in ns; and its sequence number (1-based)."""
        request = self.request(action, argv)
        seq = self.sent
        start = now()
        try:
            response = self.rpc(request, timeout=120)
        except self.grpc.RpcError as e:
            response = e
        elapsed = now() - start
        self.check(response, action)
        return elapsed, seq

    def in_flight(self, total, slots, argv=("/bin/true",)):
        """`total` Runs with `slots` kept in flight, each on an action directory of its own. ns."""
        free = list(self.actions[:slots])
        if len(free) < slots:
            raise BenchFailure(f"runner {self.name}: {slots} in flight need {slots} action directories, have {len(free)}")
        done = queue.Queue()
        issued = completed = 0

        def issue():
            action = free.pop()
            future = self.rpc.future(self.request(action, argv), timeout=120)
            future.add_done_callback(lambda f, a=action: done.put((f, a)))

        start = now()
        while issued < total and free:
            issue()
            issued += 1
        while completed < issued:
            future, action = done.get()
            completed += 1
            try:
                response = future.result()
            except self.grpc.RpcError as e:
                response = e
            self.check(response, action)
            free.append(action)
            if issued < total:
                issue()
                issued += 1
        return now() - start

    def status(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
        raise BenchFailure(f"runner {self.name}: no {field} in /proc/{self.pid}/status")

    def reset_peak(self):
        # "5" resets VmHWM to the current RSS (proc(5), clear_refs); nothing else is touched.
        with open(f"/proc/{self.pid}/clear_refs", "w") as f:
            f.write("5")

    def action_lines(self, wait_for, timeout=10.0):
        """The runner's per-action log lines ({"action": {...}, "msg": "action"}), once it has written
        at least `wait_for` of them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = []
            with open(self.log_path) as f:
                for raw in f:
                    raw = raw.strip()
                    if not raw.startswith("{"):
                        continue
                    entry = json.loads(raw)
                    if isinstance(entry.get("action"), dict):
                        lines.append(entry["action"])
            if len(lines) >= wait_for or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def close(self):
        self.channel.close()


def numeric_fields(obj, prefix=""):
    """Every number in obj (recursing into nested objects), with a dotted name."""
    out = {}
    for key, value in obj.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[prefix + key] = value
        elif isinstance(value, dict):
            out.update(numeric_fields(value, prefix + key + "."))
    return out


def where_time_goes(runner, measured, reps):
    """measured: [(rep, seq, client ms)] of the latency phase. The runner's log line for Run number
    seq is line seq - 1: in the warm-up and the latency phase a runner has one Run at a time, so its
    lines come in the order sent, before any of the later phases' concurrent ones."""
    lines = runner.action_lines(runner.sent)
    if len(lines) != runner.sent:
        raise BenchFailure(f"runner {runner.name}: {runner.sent} Runs sent, {len(lines)} action log lines")
    for i, line in enumerate(lines):
        if line.get("outcome") != "exited" or line.get("exitCode") != 0 or "error" in line:
            raise BenchFailure(f"runner {runner.name}: action log line {i + 1} is not a clean exit 0: {json.dumps(line)}")
    fields = {}  # name -> [[value per measured action] per rep]
    overhead = [[] for _ in range(reps)]
    for rep, seq, client_ms in measured:
        line = lines[seq - 1]
        expected = runner.sent_actions[seq - 1]
        if line.get("id") != expected:
            raise BenchFailure(f"runner {runner.name}: log line {seq} is for {line.get('id')!r}, Run {seq} was in {expected!r}: lines out of order")
        # Every numeric field of `action` but exitCode (0 for every line, checked above), and of
        # `action.phases` if the runner has one.
        values = {k: v for k, v in numeric_fields(line).items() if k != "exitCode" and not k.startswith("phases.")}
        if isinstance(line.get("phases"), dict):
            values.update(numeric_fields(line["phases"], "phases."))
        for key, value in values.items():
            fields.setdefault(key, [[] for _ in range(reps)])[rep].append(value)
        overhead[rep].append(client_ms - line["durationMs"])
    fields["rpcOverheadMs"] = overhead
    return {
        key: {
            "median": statistics.median([v for rep in per_rep for v in rep]),
            "perRep": [statistics.median(rep) if rep else None for rep in per_rep],
            "n": sum(len(rep) for rep in per_rep),
        }
        for key, per_rep in fields.items()
    }


def start_fed_by_limit(spawner, r):
    """A gRPC baseline with a limit server of its own (r["limit"]: {argv, env, log}; the floor,
    bench/grpc-limit.mjs): the limit started here with posix_spawn like every other process timed,
    and its stdin and stdout handed to the baseline as its fds 3 and 4. Both pids."""
    to_limit, requests = os.pipe()
    answers, from_limit = os.pipe()
    try:
        limit = r["limit"]
        limit_pid = os.posix_spawn(
            limit["argv"][0],
            limit["argv"],
            dict(limit.get("env", {})),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, to_limit, 0),
                (os.POSIX_SPAWN_DUP2, from_limit, 1),
                (os.POSIX_SPAWN_OPEN, 2, limit["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            ],
        )
        p = spawner.prepare(f"runner {r['name']}", r)
        p["actions"] += [(os.POSIX_SPAWN_DUP2, requests, 3), (os.POSIX_SPAWN_DUP2, answers, 4)]
        try:
            pid = spawner.start(p)
        except OSError:
            os.kill(limit_pid, 9)
            os.waitpid(limit_pid, 0)
            raise
        return pid, limit_pid
    finally:
        # Only the two processes hold the pipes: the limit sees the end of its input when the
        # baseline exits, answers what is outstanding and exits itself.
        for fd in (to_limit, requests, answers, from_limit):
            os.close(fd)


def runner_mode(spec):
    """The runners are started here too, with posix_spawn ({argv, env, output: its log}), and
    stopped with SIGTERM at the end, or on any failure; "runnerExits" says how each exited (and
    how a baseline's own limit did, as "NAME: its limit", once the baseline had stopped)."""
    import grpc  # Debian's python3-grpcio; only this mode needs it

    spawner = Spawner()
    pids = {}
    limit_pids = {}  # a baseline's own limit server, by the baseline's name
    servers = []  # the limit's servers, once started: killed here after a failure
    try:
        # The runners, and the gRPC baselines asked for: the server that answers at once
        # (bench/grpc-echo.mjs), the one that hands each Run to the limit (bench/grpc-limit.mjs).
        servers_of_grpc = spec["runners"] + spec.get("baselines", [])
        for r in servers_of_grpc:
            if r.get("limit"):
                pids[r["name"]], limit_pids[r["name"]] = start_fed_by_limit(spawner, r)
            else:
                pids[r["name"]] = spawner.start(spawner.prepare(f"runner {r['name']}", r))
        for r in servers_of_grpc:
            wait_for_socket(r["name"], pids, r["socket"], r["output"])
        result = ab_phases(grpc, spec, pids, servers) if spec.get("ab") else measure_runners(grpc, spawner, spec, pids, servers)
    except BaseException:
        for server in servers:
            try:
                os.kill(server.pid, 9)
                os.waitpid(server.pid, 0)
            except OSError:
                pass  # closed and reaped already
        raise
    finally:
        exits = {}
        for name, pid in pids.items():
            os.kill(pid, 15)
            _, status = os.waitpid(pid, 0)
            exits[name] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        for name, pid in limit_pids.items():
            _, status = os.waitpid(pid, 0)
            exits[f"{name}: its limit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    result["runnerExits"] = exits
    return result


def log_tail(path, size=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-size:].strip()
    except OSError as e:
        return f"(no log: {e.strerror})"


def wait_for_socket(name, pids, socket, log_path, within_s=20.0):
    """Until the runner's socket exists; fails at once, with its log, if the runner exits first."""
    deadline = time.monotonic() + within_s
    while not os.path.exists(socket):
        pid, status = os.waitpid(pids[name], os.WNOHANG)
        if pid != 0:
            del pids[name]
            why = f"exit {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"signal {os.WTERMSIG(status)}"
            raise BenchFailure(f"runner {name} exited ({why}) before its socket appeared; its log:\n{log_tail(log_path)}")
        if time.monotonic() > deadline:
            raise BenchFailure(f"runner {name}: {socket} did not appear within {within_s:.0f} s; its log:\n{log_tail(log_path)}")
        time.sleep(0.025)


def ab_phases(grpc, spec, pids, started):
    """--ab (bench/runner.mjs): two runners, A and B (spec["runners"] in that order), and the limit,
    and nothing else. Each phase runs in rounds whose order alternates (A then B, then B then A), so
    that drift falls on both alike; a round's figure for each is its median (throughput: its rate).
      alternating   one Run at a time, A and B in turn, each followed by one action of the limit's:
                    every Run finds its runner as the full run's interleaving does (another ran since)
      backToBack    each runner's Runs one after another, then the limit's
      throughput    each runner's and the limit's actions kept `inFlight` at a time
    Ratios are left to the caller (per round: B over A, each over the limit)."""
    sizes = spec["sizes"]["ab"]
    a, b = (Runner(grpc, {**r, "pid": pids[r["name"]]}) for r in spec["runners"])
    limit_spec = spec["limit"]["servers"][0]
    limit = LimitServer(limit_spec["name"], limit_spec, spec["limit"]["actions"])
    started.append(limit)
    roles = {"a": a, "b": b}
    result = {"grpcioVersion": grpc.__version__, "python": sys.version.split()[0], "load": {}, "rounds": {}}
    for _ in range(sizes["warmup"]):
        for runner in (a, b):
            runner.timed("a1")
            limit.timed(0)

    def in_rounds(phase, one_round):
        log(phase)
        result["load"][phase] = load_average()
        result["rounds"][phase] = [one_round(("a", "b") if r % 2 == 0 else ("b", "a")) for r in range(sizes["rounds"])]

    def alternating(order):
        times = {"a": [], "b": [], "limit": []}
        for _ in range(sizes["runs"]):
            for role in order:
                times[role].append(roles[role].timed("a0")[0])
                times["limit"].append(limit.timed(0))
        return {role: statistics.median(t) / 1e6 for role, t in times.items()}

    def back_to_back(order):
        medians = {role: statistics.median([roles[role].timed("a0")[0] for _ in range(sizes["runs"])]) / 1e6 for role in order}
        medians["limit"] = statistics.median([limit.timed(0) for _ in range(sizes["runs"])]) / 1e6
        return medians

    tp = sizes["throughput"]

    def throughput(order):
        rates = {role: tp["actions"] / (roles[role].in_flight(tp["actions"], tp["inFlight"]) / 1e9) for role in order}
        rates["limit"] = tp["actions"] / (limit.in_flight(tp["actions"], tp["inFlight"]) / 1e9)
        return rates

    in_rounds("alternating", alternating)
    in_rounds("backToBack", back_to_back)
    # One batch each first: the first batch at inFlight is the slowest of a run, for runners alone.
    for runner in (a, b):
        runner.in_flight(tp["inFlight"] * 4, tp["inFlight"])
    limit.in_flight(tp["inFlight"] * 4, tp["inFlight"])
    in_rounds("throughput", throughput)
    limit.close()
    started.remove(limit)
    result["runsSent"] = {r.name: r.sent for r in (a, b)}
    return result


def measure_runners(grpc, spawner, spec, pids, started):
    sizes = spec["sizes"]
    runners = [Runner(grpc, {**r, "pid": pids[r["name"]]}) for r in spec["runners"]]
    # The gRPC baselines, timed like a runner (no log lines): gRPC alone (grpc-js answering every
    # Run at once) and gRPC + the limit (grpc-js handing every Run to the limit).
    baselines = [Runner(grpc, {**b, "pid": pids[b["name"]]}) for b in spec.get("baselines", [])]
    grpc_servers = runners + baselines
    bwrap = [spawner.prepare(f"bwrap {i}", c) for i, c in enumerate(spec["bwrap"])]
    chroot = spawner.prepare("chroot", spec["chroot"])
    result = {"grpcioVersion": grpc.__version__, "python": sys.version.split()[0], "load": {}}
    # The limit (bench/limit.c): as servers (one per set of options), and spawned once per action.
    limit = spec.get("limit") or {"servers": [], "actions": []}
    servers = [LimitServer(c["name"], c, limit["actions"]) for c in limit["servers"]]
    started.extend(servers)
    spawned_name = limit.get("spawned", {}).get("name")
    spawned = [
        spawner.prepare(f"{spawned_name} {i}", {**limit["spawned"], "argv": [*limit["spawned"]["argv"], a["root"], a["tmp"]]})
        for i, a in enumerate(limit["actions"])
    ] if spawned_name else []

    # 1. Latency per action, interleaved. The runners' warm-up Runs go to a1, the measured ones to
    #    a0, so the log lines' ids check the pairing of lines with Runs.
    log("per action, interleaved")
    result["load"]["latency"] = load_average()
    measured = {r.name: [] for r in runners}

    def runner_contender(runner):
        def run(rep):
            elapsed, seq = runner.timed("a1" if rep < 0 else "a0")
            if rep >= 0:
                measured[runner.name].append((rep, seq, elapsed / 1e6))
            return elapsed
        return run

    contenders = [(f"runner {r.name}", runner_contender(r)) for r in runners]
    contenders += [(b.name, (lambda rep, b=b: b.timed("a1" if rep < 0 else "a0")[0])) for b in baselines]
    contenders += [("bwrap", lambda rep: spawner.timed(bwrap[0])), ("chroot", lambda rep: spawner.timed(chroot))]
    contenders += [(server.name, (lambda rep, server=server: server.timed(0))) for server in servers]
    if spawned:
        contenders.append((spawned_name, lambda rep: spawner.timed(spawned[0])))
    lat = sizes["latency"]
    # The runners' CPU time over the measured rounds (not the warm-up): the Node main thread's
    # (its tid is its pid) and the whole process's. While the other contenders run, a runner idles.
    ticks = {}
    read_ticks = lambda: {r.name: (thread_cpu_ticks(r.pid, r.pid), thread_cpu_ticks(r.pid)) for r in grpc_servers}
    samples = interleave(contenders, lat["runs"], lat["reps"], lat["warmup"], True, lambda: ticks.update(before=read_ticks()))
    ticks["after"] = read_ticks()
    result["latency"] = {"perRep": per_rep_means(samples), "samples": samples}
    clk = os.sysconf("SC_CLK_TCK")
    per_action = lambda t0, t1, n: (t1 - t0) * 1000 / clk / n
    measured_runs = lat["runs"] * lat["reps"]
    result["cpu"] = {
        r.name: {
            "clockTicksPerSecond": clk,
            "latencyRuns": measured_runs,
            "latencyThreadMsPerAction": per_action(ticks["before"][r.name][0], ticks["after"][r.name][0], measured_runs),
            "latencyProcessMsPerAction": per_action(ticks["before"][r.name][1], ticks["after"][r.name][1], measured_runs),
        }
        for r in grpc_servers
    }

    # 1b. Back to back: each gRPC server and each limit server in blocks of consecutive Runs, one at
    #     a time (the runners' to a1), the blocks rotating over repetitions; a block's figure is its
    #     median. Interleaved single Runs (1.) find a runner cold, its memory and caches taken by the
    #     contenders run since its last Run; a worker's runner serving actions back to back is not.
    b2b = sizes.get("backToBack")
    if b2b:
        log("per action, back to back")
        result["load"]["backToBack"] = load_average()
        b2b_contenders = [(f"runner {r.name}", (lambda r=r: r.timed("a1")[0])) for r in runners]
        b2b_contenders += [(b.name, (lambda b=b: b.timed("a1")[0])) for b in baselines]
        b2b_contenders += [(server.name, (lambda server=server: server.timed(0))) for server in servers]
        b2b_per_rep = {name: [] for name, _ in b2b_contenders}
        for rep in range(b2b["reps"]):
            for name, fn in round_order(b2b_contenders, rep, True):
                for _ in range(b2b["warmup"]):
                    fn()
                block = sorted(fn() for _ in range(b2b["runs"]))
                b2b_per_rep[name].append(block[len(block) // 2] / 1e6)
        result["backToBack"] = {"perRep": b2b_per_rep}

    # 2. Throughput with `inFlight` kept in flight, interleaved over repetitions (rotating order).
    log("throughput")
    result["load"]["throughput"] = load_average()
    tp = sizes["throughput"]
    slots = tp["inFlight"]
    if len(bwrap) < slots:
        raise BenchFailure(f"{slots} bwrap in flight need {slots} roots, have {len(bwrap)}")
    tp_ticks = {r.name: [0, 0, 0] for r in grpc_servers}  # thread ticks, process ticks, actions

    def runner_in_flight(r, total):
        t0, p0 = thread_cpu_ticks(r.pid, r.pid), thread_cpu_ticks(r.pid)
        elapsed = r.in_flight(total, slots)
        counts = tp_ticks[r.name]
        counts[0] += thread_cpu_ticks(r.pid, r.pid) - t0
        counts[1] += thread_cpu_ticks(r.pid) - p0
        counts[2] += total
        return elapsed

    tp_contenders = [(f"runner {r.name}", (lambda total, r=r: runner_in_flight(r, total))) for r in runners]
    tp_contenders += [(b.name, (lambda total, b=b: runner_in_flight(b, total))) for b in baselines]
    tp_contenders.append(("bwrap", lambda total: spawner.in_flight(bwrap, total, slots)))
    tp_contenders += [(server.name, (lambda total, server=server: server.in_flight(total, slots))) for server in servers]
    if spawned:
        if len(spawned) < slots:
            raise BenchFailure(f"{slots} limits spawned in flight need {slots} roots, have {len(spawned)}")
        tp_contenders.append((spawned_name, lambda total: spawner.in_flight(spawned, total, slots)))
    for r in grpc_servers:  # warm-up: one batch of `slots` each
        r.in_flight(slots, slots)
    spawner.in_flight(bwrap, slots, slots)
    for server in servers:
        server.in_flight(slots, slots)
    if spawned:
        spawner.in_flight(spawned, slots, slots)
    # Each repetition is `rounds` rounds; in each, every contender runs actions/rounds with `slots`
    # in flight, in round_order(): a burst of other work on the machine then falls on
    # all of them rather than on one contender's whole repetition.
    rounds = tp["rounds"]
    batch = tp["actions"] // rounds
    if batch * rounds != tp["actions"] or batch < slots:
        raise BenchFailure(f"throughput: {tp['actions']} actions do not split into {rounds} rounds of at least {slots}")
    per_second = {name: [] for name, _ in tp_contenders}
    k = 0
    for rep in range(tp["reps"]):
        elapsed = {name: 0 for name, _ in tp_contenders}
        for _ in range(rounds):
            for name, fn in round_order(tp_contenders, k, True):
                elapsed[name] += fn(batch)
            k += 1
        for name in per_second:
            per_second[name].append(tp["actions"] / (elapsed[name] / 1e9))
    result["throughput"] = {"actionsPerSecond": per_second}
    for r in grpc_servers:
        thread, process, actions = tp_ticks[r.name]
        result["cpu"][r.name]["throughputActions"] = actions
        result["cpu"][r.name]["throughputThreadMsPerAction"] = per_action(0, thread, actions)
        result["cpu"][r.name]["throughputProcessMsPerAction"] = per_action(0, process, actions)

    # 2b. Cores: throughput with `inFlight` in flight, the whole runner pinned to the first N CPUs
    #     (sched_setaffinity on every thread of the runner and of its children: the starter
    #     servers, whose forks are the actions), and the limit server pinned the same way (its
    #     clones inherit it); this client is not pinned (it stands for bb_worker, outside).
    cores = sizes.get("cores")
    if cores and runners:
        log("cores")
        result["load"]["cores"] = load_average()
        every_cpu = os.sched_getaffinity(0)
        counts = [n for n in cores["cpus"] if n <= len(every_cpu)]
        ordered = sorted(every_cpu)
        first = runners[0]
        yardstick = next((server for server in servers if server.name == limit.get("yardstick")), None)
        targets = [(f"runner {first.name}", first.pid, lambda total: runner_in_flight(first, total))]
        if yardstick:
            targets.append((yardstick.name, yardstick.pid, lambda total: yardstick.in_flight(total, slots)))
        per_cpus = {}
        try:
            for n in counts:
                cpus = set(ordered[:n])
                figures = per_cpus.setdefault(str(n), {})
                for name, pid, fn in targets:
                    pin_tree(pid, cpus)
                    fn(slots)  # warm-up on the new CPUs
                    t0 = thread_cpu_ticks(pid, pid)
                    rates = []
                    for _ in range(cores["reps"]):
                        rates.append(cores["actions"] / (fn(cores["actions"]) / 1e9))
                    ticks_used = thread_cpu_ticks(pid, pid) - t0
                    figures[name] = {
                        "actionsPerSecond": rates,
                        "mainThreadMsPerAction": ticks_used * 1000 / os.sysconf("SC_CLK_TCK") / (cores["reps"] * cores["actions"]),
                    }
                    pin_tree(pid, every_cpu)
        finally:
            for _, pid, _ in targets:
                pin_tree(pid, every_cpu)
        result["cores"] = {"cpus": counts, "perCpus": per_cpus}

    # 3. Memory of each runner (VmHWM, the peak RSS, reset with clear_refs before each phase).
    log("memory")
    result["load"]["memory"] = load_average()
    mem = sizes["memory"]
    result["memory"] = {}
    for r in (r for r in runners if r.memory):
        m = {"rssIdleKiB": r.status("VmRSS"), "peakSoFarKiB": r.status("VmHWM")}
        r.reset_peak()
        r.in_flight(mem["inFlight"], mem["inFlight"], ("sleep", "0.5"))
        m["peakAtInFlightKiB"] = r.status("VmHWM")
        r.reset_peak()
        r.in_flight(mem["soak"], mem["soakInFlight"])
        m["peakDuringSoakKiB"] = r.status("VmHWM")
        m["rssAfterSoakKiB"] = r.status("VmRSS")
        r.reset_peak()
        r.in_flight(mem["inFlight"], mem["inFlight"], ("sleep", "0.5"))
        m["peakAtInFlightAfterSoakKiB"] = r.status("VmHWM")
        result["memory"][r.name] = m

    # 4. Where each runner's time goes: its log lines for the measured Runs.
    result["phases"] = {r.name: where_time_goes(r, measured[r.name], lat["reps"]) for r in runners}
    result["runsSent"] = {r.name: r.sent for r in runners}

    # 5. The hook's start against node -e 0, interleaved (rotating), both posix_spawned.
    log("hook start")
    result["load"]["hook"] = load_average()
    hk = sizes["hook"]
    prepared = {name: spawner.prepare(name, c) for name, c in spec["hook"].items()}
    hook_samples = interleave([(name, (lambda rep, p=p: spawner.timed(p))) for name, p in prepared.items()], hk["runs"], hk["reps"], hk["warmup"], True)
    result["hook"] = {"perRep": per_rep_means(hook_samples), "samples": hook_samples}

    result["load"]["end"] = load_average()
    for r in grpc_servers:
        r.close()
    for server in servers:
        server.close()
    return result


# ---------------------------------------------------------------------------------------------
# The runner image (bench/image.mjs).


def ready_after(grpc, socket, since, within_s=30.0):
    """Polls CheckReadiness on `socket` every 5 ms until it answers OK; ns from `since`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if os.path.exists(socket):
            channel = grpc.insecure_channel("unix:" + socket)
            try:
                check = channel.unary_unary("/buildbarn.runner.Runner/CheckReadiness", request_serializer=identity, response_deserializer=identity)
                check(b"", timeout=10)  # CheckReadinessRequest{path: ""}
                return now() - since
            except grpc.RpcError:
                pass  # not yet
            finally:
                channel.close()
        time.sleep(0.005)
    raise BenchFailure(f"{socket} never became ready")


def image_mode(spec):
    """{"containers": {name: {argv, env, output, socket}}  `docker run -d` each (its output: the id),
        "host": {argv, env, output, socket}                   a runner on the host, the baseline,
        "sizes": {runs, reps, warmup}, "action": "a0", "stop": {argv, env}  `docker stop` (the first
        container's id appended)}:
    start to first CheckReadiness OK of each, then Runs of /bin/true through each interleaved, then
    the stop of the first container; the host runner is stopped with SIGTERM and reaped."""
    import grpc

    spawner = Spawner()
    result = {"readyMs": {}, "ids": {}, "grpcioVersion": grpc.__version__, "python": sys.version.split()[0]}
    sockets = {}
    for name, command in spec["containers"].items():
        p = spawner.prepare(f"docker run {name}", command)
        start = now()
        _, status = os.waitpid(spawner.start(p), 0)
        spawner.check(p, status)
        result["readyMs"][name] = ready_after(grpc, command["socket"], start) / 1e6
        with open(command["output"]) as f:
            result["ids"][name] = f.read().split()[-1]
        sockets[name] = command["socket"]
    host = spawner.prepare("host runner", spec["host"])
    start = now()
    host_pid = spawner.start(host)
    try:
        result["readyMs"]["host"] = ready_after(grpc, spec["host"]["socket"], start) / 1e6
        sockets["host"] = spec["host"]["socket"]
        action = spec["action"]
        runners = {name: Runner(grpc, {"name": name, "socket": socket, "pid": None, "log": None, "actions": [action]}) for name, socket in sockets.items()}
        contenders = [(name, (lambda rep, r=r: r.timed(action)[0])) for name, r in runners.items()]
        sizes = spec["sizes"]
        samples = interleave(contenders, sizes["runs"], sizes["reps"], sizes["warmup"], True)
        result["run"] = {"perRep": per_rep_means(samples), "samples": samples}
        for r in runners.values():
            r.close()
        first = next(iter(spec["containers"]))
        stop = spawner.prepare("docker stop", {**spec["stop"], "argv": [*spec["stop"]["argv"], result["ids"][first]]})
        result["stopMs"] = spawner.timed(stop) / 1e6
    finally:
        os.kill(host_pid, 15)
        _, status = os.waitpid(host_pid, 0)
    result["hostRunnerExit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    return result


def main():
    spec = json.load(sys.stdin)
    mode = spec.get("mode")
    if mode == "spawn":
        result = spawn_mode(spec)
    elif mode == "runner":
        result = runner_mode(spec)
    elif mode == "image":
        result = image_mode(spec)
    else:
        raise BenchFailure(f"unknown mode {mode!r}")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except BenchFailure as e:
        print(f"outside.py: FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
