// C++: exceptions thrown and caught across several frames, rethrow,
// destructors running during unwinding, virtual calls through a base pointer,
// std::vector / std::map / std::string / std::function. Exit 0 when all checks hold.
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>
#include <algorithm>

static std::vector<std::string> log_lines;

struct Guard {
    std::string name;
    explicit Guard(std::string n) : name(std::move(n)) { log_lines.push_back("enter " + name); }
    ~Guard() { log_lines.push_back("leave " + name); }
};

struct AppError : std::runtime_error {
    int code;
    AppError(const std::string &what, int c) : std::runtime_error(what), code(c) {}
};

__attribute__((noinline)) static int level3(int x) {
    Guard g("level3");
    if (x % 3 == 0) throw AppError("divisible by three: " + std::to_string(x), x);
    if (x % 5 == 0) throw std::out_of_range("five");
    if (x % 7 == 0) throw x;
    return x * 2;
}

__attribute__((noinline)) static int level2(int x) {
    Guard g("level2");
    std::vector<int> scratch(100, x);
    return level3(x) + scratch[50];
}

__attribute__((noinline)) static int level1(int x) {
    Guard g("level1");
    try {
        return level2(x);
    } catch (const std::out_of_range &e) {
        log_lines.push_back(std::string("level1 caught out_of_range ") + e.what() + ", rethrowing");
        throw;
    }
}

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual std::string name() const { return "shape"; }
};
struct Rect : Shape {
    double w, h;
    Rect(double w_, double h_) : w(w_), h(h_) {}
    double area() const override { return w * h; }
    std::string name() const override { return "rect"; }
};
struct Square : Rect {
    explicit Square(double s) : Rect(s, s) {}
    std::string name() const override { return "square"; }
};
struct Circle : Shape {
    double r;
    explicit Circle(double r_) : r(r_) {}
    double area() const override { return 3.0 * r * r; }
};

int main() {
    bool ok = true;
    int caught_app = 0, caught_range = 0, caught_int = 0, normal = 0;
    long sum = 0;
    for (int x = 1; x <= 30; x++) {
        try {
            sum += level1(x);
            normal++;
        } catch (const AppError &e) {
            caught_app++;
            sum += e.code;
            if (x == 9) std::printf("caught AppError: %s (code %d)\n", e.what(), e.code);
        } catch (const std::exception &e) {
            caught_range++;
            if (x == 5) std::printf("caught std::exception: %s\n", e.what());
        } catch (int v) {
            caught_int++;
            sum -= v;
        }
    }
    std::printf("normal=%d app=%d range=%d int=%d sum=%ld\n", normal, caught_app, caught_range, caught_int, sum);
    if (normal + caught_app + caught_range + caught_int != 30) ok = false;

    // Every enter has a matching leave, in LIFO order per iteration.
    int balance = 0;
    size_t leaves = 0;
    for (auto &l : log_lines) {
        if (l.rfind("enter ", 0) == 0) balance++;
        if (l.rfind("leave ", 0) == 0) { balance--; leaves++; }
    }
    std::printf("log lines=%zu leaves=%zu balance=%d\n", log_lines.size(), leaves, balance);
    for (size_t i = 0; i < 8 && i < log_lines.size(); i++) std::printf("  %s\n", log_lines[i].c_str());
    if (balance != 0) ok = false;

    // Exception escaping through std::function and a lambda.
    std::function<int(int)> f = [](int v) -> int {
        if (v > 2) throw std::logic_error("lambda " + std::to_string(v));
        return v;
    };
    try {
        for (int i = 0;; i++) f(i);
    } catch (const std::logic_error &e) {
        std::printf("caught from std::function: %s\n", e.what());
    }

    // Nested try with a catch(...) that rethrows a different type.
    try {
        try {
            throw 3.5;
        } catch (...) {
            throw std::string("converted");
        }
    } catch (const std::string &s) {
        std::printf("nested: %s\n", s.c_str());
    }

    std::vector<std::unique_ptr<Shape>> shapes;
    for (int i = 1; i <= 6; i++) {
        if (i % 3 == 0) shapes.emplace_back(new Circle(i));
        else if (i % 3 == 1) shapes.emplace_back(new Rect(i, i + 1));
        else shapes.emplace_back(new Square(i));
    }
    double total = 0;
    std::map<std::string, int> kinds;
    for (const auto &s : shapes) {
        total += s->area();
        kinds[s->name()]++;
    }
    std::printf("total area %.2f\n", total);
    for (const auto &kv : kinds) std::printf("  %s: %d\n", kv.first.c_str(), kv.second);

    std::map<std::string, std::vector<int>> words;
    std::string text = "the quick brown fox jumps over the lazy dog the end";
    size_t pos = 0;
    int idx = 0;
    while (pos < text.size()) {
        size_t sp = text.find(' ', pos);
        if (sp == std::string::npos) sp = text.size();
        words[text.substr(pos, sp - pos)].push_back(idx++);
        pos = sp + 1;
    }
    for (const auto &kv : words) {
        std::string positions;
        for (int p : kv.second) positions += (positions.empty() ? "" : ",") + std::to_string(p);
        std::printf("%-6s %s\n", kv.first.c_str(), positions.c_str());
    }
    std::vector<int> v(1000);
    std::iota(v.begin(), v.end(), -500);
    std::sort(v.begin(), v.end(), [](int a, int b) { return (a * 37 % 101) < (b * 37 % 101) || ((a * 37 % 101) == (b * 37 % 101) && a < b); });
    long weighted = 0;
    for (size_t i = 0; i < v.size(); i++) weighted += (long)i * v[i];
    std::printf("sorted weighted sum %ld\n", weighted);
    if (words["the"].size() != 3) ok = false;

    std::printf("%s\n", ok ? "cxx_exceptions: ok" : "cxx_exceptions: MISMATCH");
    return ok ? 0 : 1;
}
