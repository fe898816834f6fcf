"""segtrack_ros: the ROS 2 node around segtrack_core (thin glue: conversions, threading, lifecycle)."""
