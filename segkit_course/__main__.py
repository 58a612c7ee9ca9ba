import sys

from segkit_course.build import main

sys.exit(main())
