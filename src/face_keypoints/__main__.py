"""`python -m face_keypoints`: the `face-keypoints` program, for an environment whose
scripts folder is not on PATH."""

import sys

from face_keypoints.cli import main

sys.exit(main())
