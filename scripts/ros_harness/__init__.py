"""Development harness for the segtrack node, run from a checkout only (never installed): start a node
process and drive it (client), the end-to-end demo, the overhead bench, and the venv's ROS environment."""
