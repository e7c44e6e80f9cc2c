"""Airflow 3's REST API request and response models (pydantic), as its OpenAPI document has them."""
