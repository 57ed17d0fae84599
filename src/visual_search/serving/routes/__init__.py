"""The API's routers: search (image, text), and browsing (items, categories, health, metrics, the page)."""
