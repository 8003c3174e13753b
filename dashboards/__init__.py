"""Grafana dashboards as code: panel tables, the JSON generator, provisioning and push."""
