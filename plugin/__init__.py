"""QGIS glue: the plugin class, the Processing provider and enum compatibility."""
