//! `tandem status`: the dashboard at a glance in a terminal.
