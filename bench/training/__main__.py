from bench.training.cli import main

raise SystemExit(main())
