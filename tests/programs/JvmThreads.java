// tests/tests/jvm.rs: several threads share synchronized counters, a
// ConcurrentHashMap and an object lock with wait/notify, and run hot loops
// with virtual calls, so the JIT compiles (and patches) code while threads
// run it. The output is deterministic.
import java.util.*;
import java.util.concurrent.*;

public class JvmThreads {
    interface Shape { long area(); }
    record Square(long s) implements Shape { public long area() { return s * s; } }
    record Rect(long w, long h) implements Shape { public long area() { return w * h; } }
    record Tri(long b, long h) implements Shape { public long area() { return b * h / 2; } }

    static long total = 0;
    static final Object lock = new Object();
    static int finished = 0;

    public static void main(String[] args) throws Exception {
        final int nthreads = 4, iters = 200_000;
        long[] perThread = new long[nthreads];
        ConcurrentHashMap<Integer, Long> buckets = new ConcurrentHashMap<>();
        Thread[] ts = new Thread[nthreads];
        for (int t = 0; t < nthreads; t++) {
            final int id = t;
            ts[t] = new Thread(() -> {
                long mine = 0;
                List<Shape> shapes = new ArrayList<>();
                for (int i = 0; i < iters; i++) {
                    synchronized (lock) { total += i % 7; }
                    Shape s = switch ((i + id) % 3) {
                        case 0 -> new Square(i % 10);
                        case 1 -> new Rect(i % 5, id + 1);
                        default -> new Tri(i % 4, 2);
                    };
                    shapes.add(s);
                    if (shapes.size() == 500) {
                        for (Shape x : shapes) mine += x.area();
                        shapes.clear();
                    }
                    if (i % 1000 == 0) buckets.merge(i % 17, (long) id, Long::sum);
                }
                perThread[id] = mine;
                synchronized (lock) { finished++; lock.notifyAll(); }
            }, "worker-" + t);
            ts[t].start();
        }
        synchronized (lock) { while (finished < nthreads) lock.wait(); }
        for (Thread t : ts) t.join();
        StringBuilder sb = new StringBuilder();
        for (long p : perThread) sb.append(p).append(' ');
        System.out.println("total=" + total);
        System.out.println("per-thread=" + sb.toString().trim());
        System.out.println("buckets=" + new TreeMap<>(buckets));
    }
}
