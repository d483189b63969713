"""Runnable stand-ins for Visma.net ERP and Tableau REST that speak the real wire formats."""
