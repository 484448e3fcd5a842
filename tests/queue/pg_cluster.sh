#!/bin/sh
# A throwaway PostgreSQL cluster on 127.0.0.1 for the queue tests (Debian's
# postgresql-15; scripts/install-deps.sh installs it). initdb refuses to run
# as root, so as root the cluster belongs to the `postgres` user.
#   pg_cluster.sh start DIR     initdb (once) and start; prints the port
#   pg_cluster.sh stop DIR      fast shutdown
#   pg_cluster.sh restart DIR   stop and start again on the same port
#   pg_cluster.sh crash DIR     immediate shutdown (as a crash), then start
set -eu
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL server not installed (postgresql-15)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
start() {
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
    start > /dev/null
}
case $cmd in
  start)
    mkdir -p "$dir"
    if [ ! -d "$dir/data" ]; then
      [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
      as_owner "$bin/initdb" -D "$dir/data" -U wisp -A trust -E UTF8 --locale=C --no-sync > "$dir/initdb.log"
      python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
        > "$dir/port"
    fi
    start
    cat "$dir/port" ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null ;;
  restart) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null; start ;;
  crash) as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop > /dev/null; start ;;
  *) echo "usage: pg_cluster.sh start|stop|restart|crash DIR" >&2; exit 2 ;;
esac
