"""Widgets of the console. Import them from their modules (`tui.widgets.log_view`)."""
