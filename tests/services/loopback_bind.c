/* Preloaded into the tests' slurmctld: a bind() to every interface binds to loopback instead,
 * or to the IPv4 address in BIND_ADDRESS where that is set (the controller's address on the
 * bridge of namespaced nodes). Slurm 22.05's slurmd and slurmdbd honour
 * CommunicationParameters=NoInAddrAny; its slurmctld still listened on 0.0.0.0 with it
 * (measured with psutil). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *address, socklen_t length) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind) real_bind = dlsym(RTLD_NEXT, "bind");
    if (address && address->sa_family == AF_INET && length >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in ipv4;
        memcpy(&ipv4, address, sizeof ipv4);
        if (ipv4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            const char *wanted = getenv("BIND_ADDRESS");
            if (!wanted || inet_pton(AF_INET, wanted, &ipv4.sin_addr) != 1)
                ipv4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&ipv4, sizeof ipv4);
        }
    }
    if (address && address->sa_family == AF_INET6 && length >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 ipv6;
        memcpy(&ipv6, address, sizeof ipv6);
        if (IN6_IS_ADDR_UNSPECIFIED(&ipv6.sin6_addr)) {
            ipv6.sin6_addr = in6addr_loopback;
            return real_bind(fd, (const struct sockaddr *)&ipv6, sizeof ipv6);
        }
    }
    return real_bind(fd, address, length);
}
