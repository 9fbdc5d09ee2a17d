"""The registry syncer: inotify on the MASTER's registry, rsync to the standby(s).

Modules, sender side first:
    settings   the [sync] section of the supz config: peers, transport options, intervals
    watcher    pyinotify on the registry; blocks on the inotify fd (no polling when idle)
    snapshot   a consistent (manifest, entry files) snapshot taken under the registry lock
    transport  rsync argument lists and the request channel for ssh, rsync daemon and local peers
    pusher     one peer: hello, delta or full push, commit, what the peer holds
    daemon     `supz sync run`: the loop, coalescing bursts, full resyncs, per-peer workers
    state      the status file `supz sync status` reads
    peers      check, peer_generations, pull_from (used by failover before becoming MASTER)
receiver side:
    layout     the versioned registry: `registry` is a symlink to an immutable version
    landing    assembling a pushed version beside the current one and swapping it in atomically
    agent      the receiver's request handler (ssh stdio agent, rsync daemon hook)
"""
