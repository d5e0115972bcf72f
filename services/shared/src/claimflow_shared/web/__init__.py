"""HTTP building blocks every service's FastAPI app uses."""
