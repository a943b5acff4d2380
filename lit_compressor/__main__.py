from lit_compressor.commands.cli import main

main()
