# The sandbox image for `suture heal --sandbox docker`: the toolchains a test
# command commonly needs, no credentials, an unprivileged user. suture runs it
# with --network none, a memory and pids limit, all capabilities dropped and
# the worktree as the only writable mount; extend it with your project's own
# toolchain (FROM suture-sandbox, then install what `--test-cmd` needs).
#
#   docker build -f docker/sandbox.Dockerfile -t suture-sandbox .
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates git python3 python3-venv python3-pip nodejs npm make gcc g++ \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 sandbox
USER sandbox
WORKDIR /home/sandbox
