"""The reference deployment: example configuration (haproxy.cfg, hub.env, systemd units) and
`python -m deploy.cluster` (`make cluster`), which runs it on one machine (README, "Operations:
several replicas")."""
