"""The embedded mode without remote systems: catalogs from files, renders in process."""
