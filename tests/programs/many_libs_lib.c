/* One of many small shared libraries (built with -DID=n): a loop whose
 * body takes a different path per mode. */
long step(int mode) {
    long s = ID;
    for (int i = 0; i < 20; i++) {
        if (mode == 0)
            s += i * ID;
        else if (mode == 1)
            s ^= (long)i << (ID % 7);
        else
            s -= i + ID;
    }
    return s;
}
