"""Tableau: sign-in and session care, publishing, incremental updates."""
