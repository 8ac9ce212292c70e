"""The agent (pilot-agent's job): bootstraps and runs one proxy and its app, keeps them running,
and answers for their readiness and metrics."""
