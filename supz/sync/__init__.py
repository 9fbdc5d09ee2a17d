"""The registry syncer: inotify on the MASTER's registry, rsync to the standby(s).

Sender side:
    settings   the [sync] section of the supz config: peers, transport options, intervals
    watcher    pyinotify on the registry's manifest, its symlink, the role and the config
    daemon     `supz sync run`: the loop, one worker thread per peer, full resyncs, backoff
    pusher     one peer: what it holds, delta or full push, refusals that stop pushing
    snapshot   a consistent (manifest, entry files) snapshot taken under the registry lock
    transport  the request channel and rsync argument lists per transport (ssh, daemon, local)
    rsync      running rsync, warm rsync started ahead of the next push, errors in plain words
    state      the status file `supz sync status` reads
    peers      once, check, peer_generations, pull_from (failover pulls before becoming MASTER)
Receiver side:
    layout     the versioned registry: `registry` is a symlink to a version folder
    landing    a push assembled in a spare beside the current version, checked, swapped in atomically
    arrival    watching a spare fill up, to commit the moment its last file lands
    agent      the receiver's request handler (ssh stdio agent, rsync daemon hook)
Both:
    manifests  a version as the syncer sees it: manifest, entry files, digest; how two versions relate
    lineage    the (generation, digest) states this host shared, their manifests: the bases of a merge
After a partition:
    merge      the three-way merge of two registries against their common base (pure)
    reconcile  merge with a peer and apply it; `supz sync resolve` (--take, --keep-local)
    aside      what merges and resolves set aside, reviewed or not
    problems   blocked or lagging peers and unreviewed set-asides, for doctor and status --cluster
"""
