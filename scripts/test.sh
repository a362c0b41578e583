#!/usr/bin/env bash
# The whole test suite: install what the tests need, build, check generated files, then run
# vitest inside a private mount namespace (the tests mount for real, as root; nothing they do
# can reach the host's mount table). Extra arguments go to vitest. Both lanes of vitest.config.ts
# run, the unit lane first; `npm run test:unit` runs that one alone, without root or any of this.
set -euo pipefail
cd "$(dirname "$0")/.."
# util-linux (mount, umount, unshare, nsenter, setpriv) is essential on Debian; the rest may be
# missing on a fresh machine: runc and crun for the OCI tests, gcc for the static programs, a
# JRE for the runner's real-toolchain test (java finds its libraries through /proc/self/exe);
# podman (and catatonit, from which podman kube play builds its pause image) for the podman
# hooks.d and worker-pod tests; Docker's engine, debootstrap and jsonnet for the image tests (test/docker.test.ts builds the
# image on bases made from Debian's packages; test/deploy.test.ts evaluates the jsonnet); groff-base, whose groff checks
# that the man pages render without a warning (test/docs.test.ts).
scripts/setup.sh busybox-static bubblewrap runc crun podman catatonit gcc openjdk-17-jre-headless docker.io debootstrap debian-archive-keyring jsonnet groff-base
node scripts/generate-types.mjs --check
# vitest strips types without checking them: check the tests as strictly as the code.
node_modules/.bin/tsc -p tsconfig.test.json
export MOUNTAT_OUTER_MNT_NS
MOUNTAT_OUTER_MNT_NS=$(readlink /proc/self/ns/mnt)
# vitest's JSON report is kept (its reporter announces the path: it must still be there to read),
# in scratch/ (ignored by git), replaced by each run; CI may keep it as an artifact.
report=scratch/vitest-report.json
mkdir -p scratch
rm -f "$report"
status=0
unshare --mount --propagation private node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI can read: "vitest: N passed, N failed".
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed (report: ${process.argv[1]})`)' "$report" || true
exit $status
