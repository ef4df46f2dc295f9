from puzzleloop.cli import main

raise SystemExit(main())
