"""Small test firmware for the simulated boards, built with arm-none-eabi-gcc in the tests."""
