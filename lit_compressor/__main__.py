from lit_compressor.cli import main

main()
