"""Keeps Tableau dashboards current with Visma.net ERP."""
