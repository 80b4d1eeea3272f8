"""Evaluations: assertions on outputs, prompt test runs and their reports."""
