"""rosbag2 tools without rosbag2: recording, playback, evaluation bags and replay evaluation (`ghtt-bag`)."""
