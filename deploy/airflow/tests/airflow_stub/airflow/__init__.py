"""Stand-in for the `airflow` package: only DAG (see ../README.md)."""
from airflow.models.dag import DAG  # noqa: F401
