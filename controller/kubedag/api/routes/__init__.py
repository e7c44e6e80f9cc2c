"""The REST API's routers, one module per theme of Airflow 3's API."""
