# boot.py: runs before main.py on every reset. Keep it tiny: anything that can fail
# belongs in main.py, under the watchdog.
import esp

esp.osdebug(None)  # keep the vendor's debug chatter off UART0
